// `npm test`'s set-up (scripts/test-setup.js): where it looks for the programs the tests run, and what
// it does when one is missing. The files "on the machine" are a set; nothing is installed here.
const { TOOLS, findChromium, findLibfaketime, findPromtool, planTools } = require('../../scripts/lib/test-tools');

const machine =
  (...files: string[]) =>
  (file: string) =>
    files.includes(file);
const tool = (name: string) => TOOLS.find((t: { name: string }) => t.name === name);

describe('finding Chromium', () => {
  const PATH = '/home/me/bin:/usr/local/bin:/usr/bin';

  test('the first of the names on PATH, in the order of the names, then of PATH', () => {
    expect(findChromium({ PATH }, machine('/usr/bin/chromium', '/usr/local/bin/google-chrome'))).toBe('/usr/bin/chromium');
    expect(findChromium({ PATH }, machine('/usr/local/bin/chromium', '/usr/bin/chromium'))).toBe('/usr/local/bin/chromium');
    expect(findChromium({ PATH }, machine('/usr/bin/chromium-browser'))).toBe('/usr/bin/chromium-browser');
    expect(findChromium({ PATH }, machine('/usr/bin/google-chrome-stable'))).toBe('/usr/bin/google-chrome-stable');
  });

  test('CHROMIUM_PATH wins over PATH, and when it names nothing there is no Chromium, whatever PATH holds', () => {
    expect(findChromium({ PATH, CHROMIUM_PATH: '/opt/chrome/chrome' }, machine('/opt/chrome/chrome', '/usr/bin/chromium'))).toBe(
      '/opt/chrome/chrome',
    );
    expect(findChromium({ PATH, CHROMIUM_PATH: '/opt/chrome/chrome' }, machine('/usr/bin/chromium'))).toBeUndefined();
  });

  test('none on PATH, or no PATH at all: none', () => {
    expect(findChromium({ PATH }, machine('/usr/bin/firefox', '/snap/bin/chromium'))).toBeUndefined();
    expect(findChromium({}, machine('/usr/bin/chromium'))).toBeUndefined();
  });
});

describe('finding libfaketime', () => {
  test("Debian's multiarch directory for this CPU first, then the other distributions' places", () => {
    const all = machine(
      '/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1',
      '/usr/lib/aarch64-linux-gnu/faketime/libfaketime.so.1',
      '/usr/local/lib/faketime/libfaketime.so.1',
    );
    expect(findLibfaketime({}, all, 'x64')).toBe('/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1');
    expect(findLibfaketime({}, all, 'arm64')).toBe('/usr/lib/aarch64-linux-gnu/faketime/libfaketime.so.1');
    expect(findLibfaketime({}, machine('/usr/lib64/faketime/libfaketime.so.1'), 'x64')).toBe('/usr/lib64/faketime/libfaketime.so.1');
    expect(findLibfaketime({}, machine('/usr/local/lib/faketime/libfaketime.so.1'), 'ppc64')).toBe(
      '/usr/local/lib/faketime/libfaketime.so.1',
    );
  });

  test("another CPU's library is not this one's", () => {
    expect(findLibfaketime({}, machine('/usr/lib/aarch64-linux-gnu/faketime/libfaketime.so.1'), 'x64')).toBeUndefined();
  });
});

describe('finding promtool', () => {
  test('PROMTOOL_PATH when set, and then only it; else promtool on PATH', () => {
    const PATH = '/usr/local/bin:/usr/bin';
    expect(findPromtool({ PATH }, machine('/usr/bin/promtool'))).toBe('/usr/bin/promtool');
    expect(
      findPromtool({ PATH, PROMTOOL_PATH: '/opt/prometheus/promtool' }, machine('/opt/prometheus/promtool', '/usr/bin/promtool')),
    ).toBe('/opt/prometheus/promtool');
    expect(findPromtool({ PATH, PROMTOOL_PATH: '/opt/prometheus/promtool' }, machine('/usr/bin/promtool'))).toBeUndefined();
    expect(findPromtool({ PATH }, machine('/usr/bin/prometheus'))).toBeUndefined();
  });
});

describe('what to do about missing tools', () => {
  const chromium = tool('Chromium');
  const faketime = tool('libfaketime');
  const redis = tool('redis-server');
  const promtool = tool('promtool');

  // The table of scripts/lib/test-tools.js planTools(), row by row.
  test.each([
    ['nothing missing, whatever the machine', [], { root: false, apt: false }, 'ready'],
    ['missing, root with apt-get: install', [chromium, faketime], { root: true, apt: true }, 'install'],
    ['missing, apt-get but not root: stop', [chromium], { root: false, apt: true }, 'stop'],
    ['missing, root without apt-get: stop', [chromium], { root: true, apt: false }, 'stop'],
    [
      'CHROMIUM_PATH names nothing, even as root with apt-get: stop',
      [chromium],
      { root: true, apt: true, variablesSet: ['CHROMIUM_PATH'] },
      'stop',
    ],
    [
      'PROMTOOL_PATH names nothing, even as root with apt-get: stop',
      [promtool, faketime],
      { root: true, apt: true, variablesSet: ['PROMTOOL_PATH'] },
      'stop',
    ],
    [
      'CHROMIUM_PATH set and only faketime missing: install',
      [faketime],
      { root: true, apt: true, variablesSet: ['CHROMIUM_PATH'] },
      'install',
    ],
  ])('%s', (_row, missing, machineFacts, state) => {
    expect(planTools(missing, machineFacts).state).toBe(state);
  });

  test('the Debian package of every missing tool is installed, prometheus (for promtool) without its recommended exporter', () => {
    expect(planTools([chromium, faketime, redis, promtool], { root: true, apt: true })).toEqual({
      state: 'install',
      packages: ['chromium', 'faketime', 'redis-server', 'prometheus'],
      withoutRecommends: ['prometheus'],
    });
    expect(planTools([chromium], { root: true, apt: true })).toEqual({ state: 'install', packages: ['chromium'], withoutRecommends: [] });
  });

  test('without root the message is the sudo apt-get command, naming each tool and what needs it', () => {
    const { message } = planTools([chromium, redis], { root: false, apt: true });
    expect(message).toContain('sudo apt-get install chromium redis-server');
    expect(message).toContain('Chromium, for the status page test');
    expect(message).toContain('redis-server, for the tests that kill and restart a Redis');
    expect(message).not.toContain('faketime');
  });

  test('without apt-get the message says what to install on any system, and where the tests look', () => {
    const { message } = planTools([chromium, faketime], { root: true, apt: false });
    expect(message).not.toContain('apt-get');
    expect(message).toContain(
      'Chromium or Google Chrome, as one of chromium, chromium-browser, google-chrome, google-chrome-stable on PATH or at CHROMIUM_PATH',
    );
    expect(message).toContain('libfaketime.so.1 under /usr/lib/<multiarch>/faketime');
  });

  test('a CHROMIUM_PATH or PROMTOOL_PATH that names nothing is named as the thing to fix', () => {
    expect(planTools([chromium], { root: true, apt: true, variablesSet: ['CHROMIUM_PATH'] }).message).toContain(
      'CHROMIUM_PATH names no executable: point it at Chromium, or unset it.',
    );
    expect(planTools([promtool], { root: false, apt: true, variablesSet: ['PROMTOOL_PATH'] }).message).toContain(
      'PROMTOOL_PATH names no executable: point it at promtool, or unset it.',
    );
  });
});
