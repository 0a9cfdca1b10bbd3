interface Waiting<I, O> {
  item: I;
  /** performance.now() at submit: how long the oldest call has lingered. */
  at: number;
  resolve: (result: O) => void;
  reject: (err: unknown) => void;
}

export interface StatementBatcherOptions {
  /**
   * Most items in one statement.
   * @defaultValue 200
   */
  maxBatch?: number;
  /**
   * Most statements on the wire at once; calls made meanwhile wait and go together in the next one.
   * One by default: fewer, fuller statements measured about 10% more orders per second than two
   * (docs/decisions/0007-batched-claims-and-records.md: the cost per statement is mostly the round
   * trip and the commit, not the rows); rows another
   * transaction holds are skipped, never waited for, so one statement cannot hold up the next long.
   * @defaultValue 1
   */
  maxInFlight?: number;
  /**
   * How long a call may wait for others to share its statement when none is on the wire (a full batch
   * goes at once). 0 sends a lone call on the next tick. A few milliseconds trade latency for fewer
   * statements when calls come spread out, as they do when partners take tens of milliseconds each.
   * @defaultValue 0
   */
  lingerMs?: number;
  /** Watches each batch's run under `name`, so that one that never ends is seen (/readyz, exit). */
  watchdog?: { watch<T>(what: string, work: () => Promise<T>): Promise<T> };
  name?: string;
}

/**
 * Turns many single calls into few statements: calls made in the same tick, or while earlier
 * statements are still running, are sent together. A lone call goes out on the next tick, so an idle
 * daemon waits for nothing; under load one statement (one commit) carries many orders instead of one
 * each, which is what bounds a pipeline that commits per order. Each caller gets its own result, or
 * the statement's error.
 */
export class StatementBatcher<I, O> {
  private readonly waiting: Waiting<I, O>[] = [];
  private readonly maxBatch: number;
  private readonly maxInFlight: number;
  private readonly lingerMs: number;
  private lingerTimer: NodeJS.Timeout | undefined;
  private readonly watch: <T>(work: () => Promise<T>) => Promise<T>;
  private inFlight = 0;
  private flushScheduled = false;

  /** `run` gets the items of one batch and must answer with one result per item, in the same order. */
  constructor(
    private readonly run: (items: I[]) => Promise<O[]>,
    options: StatementBatcherOptions = {},
  ) {
    this.maxBatch = options.maxBatch ?? 200;
    this.maxInFlight = options.maxInFlight ?? 1;
    this.lingerMs = options.lingerMs ?? 0;
    const { watchdog, name = 'statement batch' } = options;
    this.watch = watchdog ? (work) => watchdog.watch(name, work) : (work) => work();
  }

  submit(item: I): Promise<O> {
    return new Promise<O>((resolve, reject) => {
      this.waiting.push({ item, resolve, reject, at: performance.now() });
      // A batch filled while it lingered goes now.
      if (this.lingerTimer && this.waiting.length >= this.maxBatch) {
        clearTimeout(this.lingerTimer);
        this.lingerTimer = undefined;
        this.flushScheduled = false;
      }
      this.scheduleFlush();
    });
  }

  private scheduleFlush(): void {
    if (this.flushScheduled || this.waiting.length === 0 || this.inFlight >= this.maxInFlight) return;
    this.flushScheduled = true;
    // Only a lone statement lingers: with one already on the wire, calls gather while it runs.
    const lingerLeft =
      this.waiting.length >= this.maxBatch || this.inFlight > 0 ? 0 : this.waiting[0].at + this.lingerMs - performance.now();
    if (lingerLeft > 0) {
      this.lingerTimer = setTimeout(() => {
        this.lingerTimer = undefined;
        this.flushScheduled = false;
        this.flush();
      }, lingerLeft);
      return;
    }
    // setImmediate, not a timer: it gathers what this tick submitted without adding a delay.
    setImmediate(() => {
      this.flushScheduled = false;
      this.flush();
    });
  }

  private flush(): void {
    while (this.waiting.length > 0 && this.inFlight < this.maxInFlight) {
      const batch = this.waiting.splice(0, this.maxBatch);
      this.inFlight += 1;
      // runBatch settles every waiter itself and never rejects.
      void this.runBatch(batch).finally(() => {
        this.inFlight -= 1;
        this.scheduleFlush();
      });
    }
  }

  private async runBatch(batch: Waiting<I, O>[]): Promise<void> {
    try {
      const results = await this.watch(() => this.run(batch.map((waiting) => waiting.item)));
      if (results.length !== batch.length) {
        throw new Error(`batched statement answered ${results.length} results for ${batch.length} items`);
      }
      batch.forEach((waiting, index) => waiting.resolve(results[index]));
    } catch (err) {
      for (const waiting of batch) waiting.reject(err);
    }
  }
}
