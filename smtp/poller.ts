import type { Logger } from '../core/logger.js';

/**
 * The loop both SMTP workers (local delivery, outbound) share: a round runs when kicked
 * (right after a 250) or every pollMs (leftovers, back-off, a crash's unfinished rows);
 * kicks during a round coalesce into one more round.
 */
export abstract class Poller {
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<void> | null = null;
  private again = false;
  private stopped = false;

  constructor(
    protected readonly log: Logger,
    private readonly what: string,
    private readonly pollMs: number,
  ) {}

  /** Works until nothing is due. */
  protected abstract round(): Promise<void>;

  start() {
    this.timer = setInterval(() => this.kick(), this.pollMs);
    this.timer.unref();
    this.kick();
  }

  kick() {
    if (this.stopped) return;
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = this.round()
      .catch((e) => this.log.error({ err: e }, `${this.what} round failed; will retry`))
      .finally(() => {
        this.running = null;
        if (this.again) {
          this.again = false;
          this.kick();
        }
      });
  }

  async stop() {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    await this.running;
  }
}
