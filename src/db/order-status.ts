/** The order states this daemon reads and writes. Other values belong to the order system. */
export const OrderStatus = {
  ready: 5,
  delivered: 6,
  failed: 7,
} as const;
