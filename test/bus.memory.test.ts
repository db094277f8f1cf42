import { MemoryBus } from '../src/bus/memory/index.js';
import { busConformance } from './conformance/bus.js';

busConformance('memory', async () => new MemoryBus());
