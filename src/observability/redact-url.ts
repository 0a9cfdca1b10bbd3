/** Query parameters whose values are credentials by name; never logged or stored in the delivery log. */
const SECRET_PARAM = /token|key|secret|sign|signature|password|passwd|auth|credential/i;

/**
 * A callback URL as it may appear in a log line or last_error: user:pass@ and secret-looking query
 * values replaced. Unparseable input is cut short rather than echoed whole.
 */
export function redactUrl(raw: string): string {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return raw.length > 80 ? `${raw.slice(0, 80)}…` : raw;
  }
  if (url.username || url.password) {
    url.username = 'redacted';
    url.password = '';
  }
  for (const name of [...url.searchParams.keys()]) {
    if (SECRET_PARAM.test(name)) url.searchParams.set(name, 'redacted');
  }
  return url.toString();
}
