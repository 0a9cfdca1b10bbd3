import pino, { type Logger } from 'pino';

export type { Logger };

/**
 * pino JSON to stdout, written synchronously so nothing is lost when the process exits right after a
 * line. Signature headers and keys are redacted wherever they appear, so a careless
 * `log.info({ headers })` cannot leak them.
 */
export function createLogger(level: string, destination?: pino.DestinationStream): Logger {
  return pino(
    {
      level,
      redact: {
        paths: ['headers["webhook-signature"]', '*.headers["webhook-signature"]', 'signingKey', '*.signingKey'],
        censor: '[redacted]',
      },
    },
    destination ?? pino.destination({ sync: true }),
  );
}
