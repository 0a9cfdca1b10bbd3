/** A progress line is redrawn at most this often: a terminal over SSH need not see every batch. */
export const PROGRESS_INTERVAL_MS = 250;

/** Time left at the pace so far; null until there is a pace to go by. */
export function etaMs(done: number, total: number, elapsedMs: number): number | null {
  if (done <= 0 || elapsedMs <= 0) return null;
  return Math.max(0, Math.round(((total - done) * elapsedMs) / done));
}

export function formatDuration(ms: number): string {
  const s = Math.round(ms / 1000);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

export function formatProgress(verb: string, done: number, total: number, elapsedMs: number): string {
  const percent = total > 0 ? Math.floor((done * 100) / total) : 100;
  const eta = etaMs(done, total, elapsedMs);
  return `${verb} ${done} of ${total} (${percent}%), ${formatDuration(elapsedMs)} elapsed, ETA ${eta === null ? '-' : formatDuration(eta)}`;
}

/**
 * One line of progress redrawn in place (a carriage return and an erase to the end of the line), for a
 * person at a terminal: at most every PROGRESS_INTERVAL_MS, and always the last state before done().
 */
export class ProgressLine {
  private readonly startedAt: number;
  private lastDrawnAt = -Infinity;
  private pending?: string;
  private drawn = false;

  constructor(
    private readonly verb: string,
    private readonly write: (text: string) => void,
    private readonly now: () => number = Date.now,
  ) {
    this.startedAt = now();
  }

  update(done: number, total: number): void {
    const at = this.now();
    this.pending = formatProgress(this.verb, done, total, at - this.startedAt);
    if (at - this.lastDrawnAt < PROGRESS_INTERVAL_MS && done < total) return;
    this.draw(at);
  }

  /** Draws what is pending and ends the line, so what follows starts on a line of its own. */
  done(): void {
    if (this.pending !== undefined) this.draw(this.now());
    if (this.drawn) this.write('\n');
  }

  private draw(at: number): void {
    this.write(`\r${this.pending}\x1b[K`);
    this.pending = undefined;
    this.lastDrawnAt = at;
    this.drawn = true;
  }
}
