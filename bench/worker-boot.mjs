// Entry of each load-generator thread: registers the TypeScript loader (tsx) in this thread,
// then loads the worker module named by the main thread. Plain JS because it runs first.
import { workerData } from 'node:worker_threads';
import { register } from 'tsx/esm/api';

register();
await import(workerData.entry);
