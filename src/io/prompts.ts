// Every prompt has a default. With --yes, or when stdin is not a terminal, the
// default is taken without asking, so scripts and CI never hang on a question.

export interface Choice<T extends string> {
  value: T;
  name?: string;
}

export interface Prompter {
  readonly interactive: boolean;
  input(message: string, defaultValue: string, validate?: (v: string) => true | string): Promise<string>;
  confirm(message: string, defaultValue: boolean): Promise<boolean>;
  select<T extends string>(message: string, choices: Choice<T>[], defaultValue: T): Promise<T>;
}

export class DefaultsPrompter implements Prompter {
  readonly interactive = false;
  async input(_m: string, defaultValue: string): Promise<string> {
    return defaultValue;
  }
  async confirm(_m: string, defaultValue: boolean): Promise<boolean> {
    return defaultValue;
  }
  async select<T extends string>(_m: string, _c: Choice<T>[], defaultValue: T): Promise<T> {
    return defaultValue;
  }
}

/** Asks on the terminal with @inquirer/prompts, imported only when a prompt is shown. */
export class InquirerPrompter implements Prompter {
  readonly interactive = true;
  async input(
    message: string,
    defaultValue: string,
    validate?: (v: string) => true | string,
  ): Promise<string> {
    const { input } = await import('@inquirer/prompts');
    return input({ message, default: defaultValue, ...(validate ? { validate } : {}) });
  }
  async confirm(message: string, defaultValue: boolean): Promise<boolean> {
    const { confirm } = await import('@inquirer/prompts');
    return confirm({ message, default: defaultValue });
  }
  async select<T extends string>(message: string, choices: Choice<T>[], defaultValue: T): Promise<T> {
    const { select } = await import('@inquirer/prompts');
    return select({
      message,
      choices: choices.map((c) => ({ value: c.value, name: c.name ?? c.value })),
      default: defaultValue,
    });
  }
}
