import { redactUrl } from '../observability/redact-url';

/** http(s) URLs inside free text, up to the next character that cannot be part of one. */
const URL_IN_TEXT = /https?:\/\/[^\s"'<>`]+/gi;

/**
 * An error message as the status page may show it. Errors quote partners' answers, and older rows or
 * other writers may have put whole callback URLs in them; credentials and secret-looking query values
 * in any URL found are replaced. Escaping for HTML is the renderer's job, not this one's.
 */
export function redactError(error: string | null): string | null {
  return error === null ? null : error.replace(URL_IN_TEXT, (url) => redactUrl(url));
}
