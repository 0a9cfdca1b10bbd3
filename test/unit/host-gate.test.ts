import { HostGate } from '../../src/delivery/host-gate';

const options = { maxInFlightPerHost: 2, failureThreshold: 3, cooldownMs: 1000, maxCooldownMs: 4000, callbackTimeoutMs: 3000 };
const A = 'https://a.example';
const B = 'https://b.example';

describe('HostGate', () => {
  it('caps callbacks in flight per partner, independently of the others', () => {
    const gate = new HostGate(options);
    expect(gate.admit(A, 0)).toEqual({ admitted: true });
    expect(gate.admit(A, 0)).toEqual({ admitted: true });
    // Not answered yet: its next orders come back shortly, and are not even claimed until then.
    expect(gate.admit(A, 0)).toMatchObject({ admitted: false, until: 500, reason: '2 callbacks in flight to https://a.example', waitable: false });
    expect(gate.holdUntil(A, 0)).toMatchObject({ until: 500 });
    expect(gate.holdUntil(B, 0)).toBeUndefined();
    expect(gate.admit(B, 0)).toEqual({ admitted: true });
    gate.settle(A, { failed: false }, 10);
    expect(gate.admit(A, 10)).toEqual({ admitted: true });
  });

  it('at the cap, waiting for a slot is worth it only while the partner answers well', () => {
    const gate = new HostGate(options);
    gate.admit(A, 0);
    gate.admit(A, 0);
    expect(gate.admit(A, 0)).toMatchObject({ admitted: false, waitable: false, answering: false }); // no answer yet: maybe hung
    gate.settle(A, { failed: false }, 100);
    gate.admit(A, 100);
    expect(gate.admit(A, 200)).toMatchObject({ admitted: false, waitable: true, until: 700 });
    expect(gate.holdUntil(A, 200)).toBeUndefined(); // answering: claim, and wait for a slot
    expect(gate.admit(A, 1200)).toMatchObject({ admitted: false, waitable: false }); // silent for a second
    gate.settle(A, { failed: false, durationMs: 2000 }, 1250);
    gate.admit(A, 1250);
    // Answers, but slowly: not worth waiting for here, though another replica may have room for it.
    expect(gate.admit(A, 1250)).toMatchObject({ admitted: false, waitable: false, answering: true });
    expect(gate.holdUntil(A, 1250)).toMatchObject({ answering: true });
    gate.settle(A, { failed: true }, 1300); // a failure is not an answer
    gate.admit(A, 1300);
    expect(gate.admit(A, 1300)).toMatchObject({ admitted: false, waitable: false });
  });

  it('a partner silent at its cap is held as a whole, once per callback timeout; a slow one only for about an answer', () => {
    const gate = new HostGate(options);
    gate.admit(A, 0);
    gate.admit(A, 0);
    // Busy for moments only: not silent yet, just not answered yet.
    expect(gate.admit(A, 10)).toMatchObject({ admitted: false, until: 510, holdPartner: false, waitable: false });
    expect(gate.admit(A, 1000)).toMatchObject({ admitted: false, until: 4000, holdPartner: true }); // a second, no answer
    expect(gate.admit(A, 1020)).toMatchObject({ admitted: false, until: 4020, holdPartner: false }); // already held
    expect(gate.admit(A, 4015)).toMatchObject({ admitted: false, holdPartner: true }); // still silent: hold again

    const slow = new HostGate(options);
    slow.admit(B, 0);
    slow.settle(B, { failed: false, durationMs: 1200 }, 1200);
    slow.admit(B, 1200);
    slow.admit(B, 1200);
    expect(slow.admit(B, 1300)).toMatchObject({ admitted: false, until: 2500, waitable: false, holdPartner: false, answering: true });
    expect(slow.holdUntil(B, 1300)).toMatchObject({ until: 2500 });
    // Slow but healthy: a second and a half without an answer is less than two of its answer times.
    expect(slow.admit(B, 2700)).toMatchObject({ admitted: false, holdPartner: false, until: 3900 });
    // Silent now, though it answered before: no longer a partner that answers.
    expect(slow.admit(B, 3600)).toMatchObject({ admitted: false, holdPartner: true, until: 6600, answering: false });
  });

  it('holdUntil makes the same decision as admit, and asks for the whole partner to be held once per silent spell', () => {
    const gate = new HostGate(options);
    gate.admit(A, 0);
    gate.admit(A, 0);
    expect(gate.holdUntil(A, 1000)).toMatchObject({ until: 4000, holdPartner: true });
    expect(gate.holdUntil(A, 1100)).toMatchObject({ until: 4100, holdPartner: false });
    expect(gate.admit(A, 1200)).toMatchObject({ admitted: false, holdPartner: false });

    const probing = new HostGate(options);
    for (let i = 0; i < 3; i++) {
      probing.admit(B, 0);
      probing.settle(B, { failed: true }, 0);
    }
    expect(probing.admit(B, 1000)).toEqual({ admitted: true, probe: true });
    // Held until the probe has answered or timed out (callbackTimeoutMs after it went out), not for a moment.
    expect(probing.holdUntil(B, 1000)).toMatchObject({ until: 4000, reason: 'probing https://b.example' });
    expect(probing.holdUntil(B, 3800)).toMatchObject({ until: 4300 });
  });

  it('opens after the threshold of failures in a row, lets one probe through after the cooldown, and closes on success', () => {
    const gate = new HostGate(options);
    for (let i = 0; i < 2; i++) {
      gate.admit(A, 0);
      expect(gate.settle(A, { failed: true }, 0)).toBeUndefined();
    }
    gate.admit(A, 0);
    expect(gate.probeFollows(A)).toBe(false);
    expect(gate.settle(A, { failed: true }, 100)).toBe(1100); // opened: the caller defers the backlog
    expect(gate.probeFollows(A)).toBe(true); // …all but one order past the probe
    // Orders refused while it is open come back once the probe sent at 1100 has answered or timed out
    // (callback timeout 3 s + 3 s), with the backlog, not with the probe.
    // The order due at 1100 is the probe: circuitEnd tells a deferral to leave it there.
    expect(gate.admit(A, 500)).toMatchObject({ admitted: false, until: 7100, circuitEnd: 1100, reason: 'circuit open for https://a.example' });
    expect(gate.holdUntil(A, 500)).toMatchObject({ until: 7100, circuitEnd: 1100 });
    expect(gate.admit(B, 500)).toEqual({ admitted: true });

    expect(gate.admit(A, 1100)).toEqual({ admitted: true, probe: true });
    expect(gate.admit(A, 1100)).toMatchObject({ admitted: false, reason: 'probing https://a.example' });
    expect(gate.settle(A, { failed: false }, 1200, true)).toBeUndefined();
    expect(gate.probeFollows(A)).toBe(false);
    expect(gate.admit(A, 1200)).toEqual({ admitted: true });
    expect(gate.admit(A, 1200)).toEqual({ admitted: true });
  });

  it('a failed probe opens it again for twice as long, up to the maximum', () => {
    const gate = new HostGate(options);
    for (let i = 0; i < 3; i++) {
      gate.admit(A, 0);
      gate.settle(A, { failed: true }, 0);
    }
    let now = 1000;
    for (const expected of [2000, 4000, 4000]) {
      expect(gate.admit(A, now)).toEqual({ admitted: true, probe: true });
      expect(gate.settle(A, { failed: true }, now, true)).toBe(now + expected);
      now += expected;
    }
  });

  it('a callback sent before the circuit opened that ends while the probe is out is not taken for the probe', () => {
    // Cooldown 1 s, callback timeout 3 s: callbacks in flight when the circuit opens can outlive it.
    const gate = new HostGate({ ...options, maxInFlightPerHost: 4 });
    gate.admit(A, 0); // sent before the circuit opened, and still out
    for (let i = 0; i < 3; i++) {
      gate.admit(A, 0);
      gate.settle(A, { failed: true }, 0);
    }
    expect(gate.admit(A, 1000)).toEqual({ admitted: true, probe: true });
    // The old callback times out: old news. The probe is still the only one out, and the backlog is
    // not held again (undefined: nothing for the caller to defer).
    expect(gate.settle(A, { failed: true }, 1500)).toBeUndefined();
    expect(gate.admit(A, 2500)).toMatchObject({ admitted: false, reason: 'probing https://a.example', until: 4000 });
    // The probe fails: that doubles the cooldown, and the next probe may go at its end.
    expect(gate.settle(A, { failed: true }, 3000, true)).toBe(5000);
    expect(gate.admit(A, 5000)).toEqual({ admitted: true, probe: true });

    // A non-probe that ends with no verdict (aborted) does not end the probing either.
    const aborted = new HostGate({ ...options, maxInFlightPerHost: 4 });
    aborted.admit(B, 0);
    for (let i = 0; i < 3; i++) {
      aborted.admit(B, 0);
      aborted.settle(B, { failed: true }, 0);
    }
    expect(aborted.admit(B, 1000)).toEqual({ admitted: true, probe: true });
    aborted.settle(B, 'aborted', 1100);
    expect(aborted.admit(B, 1200)).toMatchObject({ admitted: false, reason: 'probing https://b.example' });
    aborted.settle(B, 'aborted', 1300, true); // the probe, not sent after all (over a rate limit)
    expect(aborted.admit(B, 1300)).toEqual({ admitted: true, probe: true });
  });

  it('callbacks sent before the circuit opened that fail after it neither hold the partner longer nor again', () => {
    // The whole cap in flight when the partner stops answering: the first failures open the circuit,
    // the rest time out after it.
    const gate = new HostGate({ ...options, maxInFlightPerHost: 6 });
    for (let i = 0; i < 6; i++) gate.admit(A, 0);
    gate.settle(A, { failed: true }, 3000);
    gate.settle(A, { failed: true }, 3000);
    expect(gate.settle(A, { failed: true }, 3000)).toBe(4000); // opened: the one hold of the backlog
    expect(gate.settle(A, { failed: true }, 3400)).toBeUndefined();
    expect(gate.settle(A, { failed: true }, 3800)).toBeUndefined();
    // Nor does an old answer's Retry-After: the order left due at 4000 stays the probe.
    expect(gate.settle(A, { failed: true, pauseMs: 1000 }, 3900)).toBeUndefined();
    expect(gate.admit(A, 4000)).toEqual({ admitted: true, probe: true });
    // The probe answers: the partner is back at once.
    expect(gate.settle(A, { failed: false }, 5000, true)).toBeUndefined();
    expect(gate.admit(A, 5000)).toEqual({ admitted: true });

    // Without the Retry-After, the probe goes when the circuit's first cooldown ends, not after the last
    // old failure's.
    const plain = new HostGate({ ...options, maxInFlightPerHost: 6 });
    for (let i = 0; i < 6; i++) plain.admit(B, 0);
    for (const at of [3000, 3000, 3000, 3400, 3800, 3900]) plain.settle(B, { failed: true }, at);
    expect(plain.admit(B, 4000)).toEqual({ admitted: true, probe: true });
  });

  it('a success in between resets the count; a final 4xx is not a failure of the partner', () => {
    const gate = new HostGate(options);
    for (const failed of [true, true, false, true, true]) {
      gate.admit(A, 0);
      expect(gate.settle(A, { failed }, 0)).toBeUndefined();
    }
    expect(gate.admit(A, 0)).toEqual({ admitted: true });
  });

  it('Retry-After on 429/503 pauses the partner for that long, capped; an aborted callback counts for nothing', () => {
    const gate = new HostGate(options);
    gate.admit(A, 0);
    expect(gate.settle(A, { failed: true, pauseMs: 2500 }, 0)).toBe(2500);
    expect(gate.probeFollows(A)).toBe(false); // a pause, not an open circuit: everything may go at its end
    expect(gate.admit(A, 2000)).toMatchObject({ admitted: false, until: 2500 });
    expect(gate.admit(A, 2500)).toEqual({ admitted: true });
    expect(gate.settle(A, 'aborted', 2500)).toBeUndefined();
    gate.admit(B, 0);
    expect(gate.settle(B, { failed: true, pauseMs: 86_400_000 }, 0)).toBe(4000);
  });

  it('the failure that opens the circuit during a Retry-After pause holds the backlog again, to split off the probe', () => {
    const gate = new HostGate({ ...options, maxInFlightPerHost: 3 });
    for (let i = 0; i < 3; i++) expect(gate.admit(A, 0)).toEqual({ admitted: true }); // all three out together
    expect(gate.settle(A, { failed: true, pauseMs: 3000 }, 0)).toBe(3000); // paused: the backlog due at 3000
    expect(gate.probeFollows(A)).toBe(false);
    expect(gate.settle(A, { failed: true }, 100)).toBeUndefined();
    expect(gate.settle(A, { failed: true }, 200)).toBe(3000); // opened, ending with the pause…
    expect(gate.probeFollows(A)).toBe(true); // …so the caller splits the probe off the backlog due then
    expect(gate.admit(A, 500)).toMatchObject({ admitted: false, circuitEnd: 3000 });
    expect(gate.admit(A, 3000)).toEqual({ admitted: true, probe: true });
  });

  it('a Retry-After on every callback in flight holds the backlog once, when the pause begins', () => {
    const gate = new HostGate({ ...options, failureThreshold: 100, maxInFlightPerHost: 4 });
    for (let i = 0; i < 4; i++) gate.admit(A, 0);
    expect(gate.settle(A, { failed: true, pauseMs: 2000 }, 100)).toBe(2100);
    expect(gate.settle(A, { failed: true, pauseMs: 2000 }, 105)).toBeUndefined();
    expect(gate.settle(A, { failed: true, pauseMs: 3000 }, 110)).toBeUndefined();
    expect(gate.admit(A, 2500)).toMatchObject({ admitted: false, until: 3110 }); // the longest pause counts
    expect(gate.admit(A, 3110)).toEqual({ admitted: true });
    // A pause after the last one ended begins a new hold.
    expect(gate.settle(A, { failed: true, pauseMs: 1000 }, 3200)).toBe(4200);
  });
});
