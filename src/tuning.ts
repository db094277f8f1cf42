// V8 settings the `parley` command applies to its own process, before the server's modules
// load. Imported first by cli.ts; the library (createParley) leaves an embedding process's
// settings alone.
//
// Allocation-site pretenuring off. V8 allocates the objects of an allocation site straight in
// the old generation once enough of them survived a scavenge. A send's objects live for its
// commit, a few milliseconds, but a few sends caught in flight by scavenges tip their sites
// over: the later objects of those sites, nearly all short-lived, then fill the old generation
// until the next major collection. One node, hot rooms at 1,500 msg/s (0.5 core): the old
// generation grew 2.6 MB/s with it and 1.5 MB/s without, at the same CPU per message
// (docs/benchmarks.md, "Pretenuring off"). A pretenuring flag on node's own command line
// (`node --allocation-site-pretenuring …/cli.js start`) wins.
import { setFlagsFromString } from 'node:v8';

if (!process.execArgv.some((a) => a.includes('allocation-site-pretenuring'))) setFlagsFromString('--no-allocation-site-pretenuring');
