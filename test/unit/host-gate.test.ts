import { HostGate } from '../../src/delivery/host-gate';

const options = { maxInFlightPerHost: 2, failureThreshold: 3, cooldownMs: 1000, maxCooldownMs: 4000 };
const A = 'https://a.example';
const B = 'https://b.example';

describe('HostGate', () => {
  it('caps callbacks in flight per partner, independently of the others', () => {
    const gate = new HostGate(options);
    expect(gate.admit(A, 0)).toEqual({ admitted: true });
    expect(gate.admit(A, 0)).toEqual({ admitted: true });
    expect(gate.admit(A, 0)).toMatchObject({ admitted: false, until: 500, reason: '2 callbacks in flight to https://a.example' });
    expect(gate.admit(B, 0)).toEqual({ admitted: true });
    gate.settle(A, { failed: false }, 10);
    expect(gate.admit(A, 10)).toEqual({ admitted: true });
  });

  it('opens after the threshold of failures in a row, lets one probe through after the cooldown, and closes on success', () => {
    const gate = new HostGate(options);
    for (let i = 0; i < 2; i++) {
      gate.admit(A, 0);
      expect(gate.settle(A, { failed: true }, 0)).toBeUndefined();
    }
    gate.admit(A, 0);
    expect(gate.settle(A, { failed: true }, 100)).toBe(1100); // opened: the caller defers the backlog
    expect(gate.admit(A, 500)).toMatchObject({ admitted: false, until: 1100, reason: 'circuit open for https://a.example' });
    expect(gate.admit(B, 500)).toEqual({ admitted: true });

    expect(gate.admit(A, 1100)).toEqual({ admitted: true }); // the probe
    expect(gate.admit(A, 1100)).toMatchObject({ admitted: false, reason: 'probing https://a.example' });
    expect(gate.settle(A, { failed: false }, 1200)).toBeUndefined();
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
      expect(gate.admit(A, now)).toEqual({ admitted: true });
      expect(gate.settle(A, { failed: true }, now)).toBe(now + expected);
      now += expected;
    }
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
    expect(gate.admit(A, 2000)).toMatchObject({ admitted: false, until: 2500 });
    expect(gate.admit(A, 2500)).toEqual({ admitted: true });
    expect(gate.settle(A, 'aborted', 2500)).toBeUndefined();
    gate.admit(B, 0);
    expect(gate.settle(B, { failed: true, pauseMs: 86_400_000 }, 0)).toBe(4000);
  });
});
