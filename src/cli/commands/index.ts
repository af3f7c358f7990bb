// Every command, in the order `mlship --help` lists them. Each module registers
// its options only; the work it does is imported when the command runs, so
// `mlship --help` stays fast.

import type { Register } from '../context.js';
import { registerBakeoff } from './bakeoff.js';
import { registerCompose } from './compose.js';
import { registerData } from './data.js';
import { registerDeploy } from './deploy.js';
import { registerDoctor } from './doctor.js';
import { registerInit } from './init.js';
import { registerJobs } from './jobs.js';
import { registerKeys } from './keys.js';
import { registerOptimize } from './optimize.js';
import { registerPredict } from './predict.js';
import { registerRollout } from './rollout.js';
import { registerServe } from './serve.js';
import { registerTop } from './top.js';
import { registerValidate } from './validate.js';
import { registerWrap } from './wrap.js';

export const COMMANDS: Register[] = [
  // the five steps
  registerBakeoff,
  registerWrap,
  registerServe,
  registerCompose,
  registerOptimize,
  registerDeploy,
  registerData,
  registerRollout,
  // asynchronous and batch predictions
  registerJobs,
  registerPredict,
  // running the stack
  registerKeys,
  registerTop,
  // setup and checks
  registerInit,
  registerValidate,
  registerDoctor,
];
