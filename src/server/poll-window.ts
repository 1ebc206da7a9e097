/**
 * How long the server polls for the next request after an answer before it sleeps, adapted as a
 * guest kernel's halt polling adapts: a virtual CPU that sleeps takes tens of microseconds to
 * wake, more than most calls take to answer, so while a program's calls follow each other closely
 * polling pays; but Node cannot yield the CPU while it polls, so a program sharing the server's
 * CPU cannot send its next request until the poll runs out. Hence: a request caught by a poll
 * doubles the window (up to MAX_US, which a program sharing the CPU never does); a poll that runs
 * out halves it, and below MIN_US closes it; a closed window opens at MIN_US again (a probe) after
 * some requests in a row that came within MAX_US of the answer while the server slept. How many:
 * PROBE_AFTER, doubled (up to PROBE_AFTER_MAX) each time a window closes without having caught a
 * request since it opened, back to PROBE_AFTER when one catches. On a shared CPU the probes run
 * out and come ever more rarely, so the server sleeps almost always; with a CPU to itself it polls
 * at MAX_US. MIN_US is above the gaps from an answer to the program's next request that polls
 * caught on this machine (5–15 µs for B6 through the shim, 90 % under 12 µs).
 */
export const MAX_US = 50;
export const MIN_US = 20;
export const PROBE_AFTER = 4;
export const PROBE_AFTER_MAX = 64;

export class PollWindow {
  /** Microseconds to poll after the next answer; 0: sleep at once. */
  us = 0;
  private shortSleeps = 0;
  /** Quick requests in a row, while the server slept, that open a closed window. */
  private probeAfter = PROBE_AFTER;
  private caughtSinceOpen = false;

  /** A poll after an answer caught the next request. */
  caught(): void {
    this.us = Math.min(MAX_US, this.us * 2);
    this.caughtSinceOpen = true;
  }

  /** The poll after an answer ran out without a request. */
  ranOut(): void {
    if (this.us >= 2 * MIN_US) this.us /= 2;
    else {
      this.us = 0;
      this.probeAfter = this.caughtSinceOpen ? PROBE_AFTER : Math.min(PROBE_AFTER_MAX, 2 * this.probeAfter);
    }
    this.shortSleeps = 0;
  }

  /** A request came while the server slept, `idleUs` after the last answer. */
  slept(idleUs: number): void {
    if (idleUs > MAX_US) {
      this.shortSleeps = 0;
      return;
    }
    if (++this.shortSleeps < this.probeAfter) return;
    if (this.us) this.us = Math.min(MAX_US, this.us * 2);
    else {
      this.us = MIN_US;
      this.caughtSinceOpen = false;
    }
    this.shortSleeps = 0;
  }
}

/**
 * The polling itself: after an answer the event loop keeps turning (each turn with an immediate
 * pending polls the sockets without waiting) for the window, and what happens to each poll
 * adapts the window. Call `arrived()` when bytes come and `answered()` after writing an answer.
 */
export class AnswerPoller {
  readonly window = new PollWindow();
  /** performance.now() of the last answer, and until when the loop polls after it (0: not). */
  private answeredAt = 0;
  private pollUntil = 0;
  private polling = false;

  /** Bytes came: caught by the poll after the last answer, or after a sleep. */
  arrived(): void {
    if (this.polling) this.window.caught();
    else this.window.slept((performance.now() - this.answeredAt) * 1000);
    this.pollUntil = 0;
  }

  answered(): void {
    this.answeredAt = performance.now();
    if (!this.window.us) return;
    this.pollUntil = this.answeredAt + this.window.us / 1000;
    if (this.polling) return;
    this.polling = true;
    setImmediate(this.turn);
  }

  private readonly turn = (): void => {
    if (!this.pollUntil) this.polling = false;
    else if (performance.now() < this.pollUntil) setImmediate(this.turn);
    else {
      this.pollUntil = 0;
      this.polling = false;
      this.window.ranOut();
    }
  };
}
