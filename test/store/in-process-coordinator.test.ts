import { InProcessCoordinator } from '../../src/store/coordinator/in-process.js';
import { coordinatorSuite } from './coordinator-suite.js';

coordinatorSuite('in-process', async (clock) => ({
  replicas: [new InProcessCoordinator({ now: clock.now })],
  close: async () => undefined,
}));
