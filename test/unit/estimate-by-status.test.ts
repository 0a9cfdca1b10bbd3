import { estimateByStatus } from '../../src/db/reports/order-counts';

const none = { vals: null, freqs: null, distinct: null, null_share: null };

it.each([
  ['never analyzed: no estimate', -1, none, { delivered: null, failed: null, other: null }],
  ['analyzed while empty', 0, none, { delivered: 0, failed: 0, other: 0 }],
  [
    'every status among the most common values',
    1000,
    { vals: '{6,7,2}', freqs: [0.8, 0.15, 0.05], distinct: 3, null_share: 0 },
    { delivered: 800, failed: 150, other: 50 },
  ],
  // 7 is common; 5 and 6 share the remaining tenth, as the planner would guess "status = 6".
  [
    'a status too rare to be common: the rest shared evenly',
    1000,
    { vals: '{7}', freqs: [0.9], distinct: 3, null_share: 0 },
    { delivered: 50, failed: 900, other: 0 },
  ],
  [
    'n_distinct as a share of the rows',
    100,
    { vals: '{6}', freqs: [0.5], distinct: -0.02, null_share: 0 },
    { delivered: 50, failed: 50, other: 0 },
  ],
])('%s', (_name, rows, statistics, expected) => {
  expect(estimateByStatus(rows, statistics)).toEqual(expected);
});
