import { UserError } from './user-error';

/**
 * A command called wrongly (a bad flag value, a missing selector): one line and exit 2, so a script
 * can tell "fix the invocation" from "the command ran and failed" (a UserError, exit 1).
 */
export class UsageError extends UserError {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}
