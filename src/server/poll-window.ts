/**
 * How long the server polls for the next request after an answer before it sleeps, adapted as a
 * guest kernel's halt polling adapts: a virtual CPU that sleeps takes tens of microseconds to
 * wake, more than most calls take to answer, so while a program's calls follow each other closely
 * polling pays; but Node cannot yield the CPU while it polls, so a program sharing the server's
 * CPU cannot send its next request until the poll runs out. Hence: a poll that runs out halves
 * the window (to nothing below MIN_US); a request caught by a poll doubles it (up to MAX_US,
 * which a program sharing the CPU never does); and after GROW_AFTER requests in a row that came
 * within MAX_US of the answer while the server slept, a window of nothing opens at MIN_US again.
 * On a shared CPU nearly every poll runs out and the server sleeps almost always; with a CPU to
 * itself it polls at MAX_US.
 */
export const MAX_US = 50;
const MIN_US = 10;
const GROW_AFTER = 8;

export class PollWindow {
  /** Microseconds to poll after the next answer; 0: sleep at once. */
  us = 0;
  private shortSleeps = 0;

  /** A poll after an answer caught the next request. */
  caught(): void {
    this.us = Math.min(MAX_US, this.us * 2);
  }

  /** The poll after an answer ran out without a request. */
  ranOut(): void {
    this.us = this.us >= 2 * MIN_US ? this.us / 2 : 0;
    this.shortSleeps = 0;
  }

  /** A request came while the server slept, `idleUs` after the last answer. */
  slept(idleUs: number): void {
    if (idleUs > MAX_US) {
      this.shortSleeps = 0;
      return;
    }
    if (++this.shortSleeps < GROW_AFTER) return;
    this.us = this.us ? Math.min(MAX_US, this.us * 2) : MIN_US;
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
