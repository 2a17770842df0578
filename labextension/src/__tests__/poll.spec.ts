import { RunsModel } from '../model';
import * as api from '../api';

jest.mock('../api', () => {
  const actual = jest.requireActual('../api');
  return { ...actual, listRuns: jest.fn() };
});

const listRuns = api.listRuns as jest.MockedFunction<typeof api.listRuns>;

/** Let the pending promise callbacks run. */
async function settle(): Promise<void> {
  for (let k = 0; k < 10; k++) {
    await Promise.resolve();
  }
}

/** Advance the clock by `ms`, letting the answers land on the way. */
async function advance(ms: number): Promise<void> {
  for (let t = 0; t < ms; t += 100) {
    jest.advanceTimersByTime(100);
    await settle();
  }
}

describe('the runs model polls', () => {
  let model: RunsModel;

  beforeEach(() => {
    jest.useFakeTimers();
    listRuns.mockReset();
    listRuns.mockResolvedValue({ runs: [], total: 0 } as any);
    model = new RunsModel();
    model.pollInterval = 1000;
    model.restore({}, null);
  });

  afterEach(() => {
    model.dispose();
    jest.useRealTimers();
  });

  it('only while the table is on screen', async () => {
    await advance(5000);
    const offScreen = listRuns.mock.calls.length;
    model.visible = true;
    await advance(5000);
    const onScreen = listRuns.mock.calls.length - offScreen;
    expect(onScreen).toBeGreaterThanOrEqual(4);
    model.visible = false;
    await advance(100);
    const hidden = listRuns.mock.calls.length;
    await advance(5000);
    expect(listRuns.mock.calls.length).toBe(hidden);
  });

  it('less often while the server fails, as often as before once it answers', async () => {
    model.visible = true;
    await advance(3000);
    listRuns.mockRejectedValue(new api.NbtraceError('down', 0, 'network'));
    const before = listRuns.mock.calls.length;
    await advance(20000);
    const failing = listRuns.mock.calls.length - before;
    expect(model.error?.message).toBe('down');
    expect(failing).toBeGreaterThanOrEqual(2); // it keeps trying...
    expect(failing).toBeLessThan(10); // ...but not every second (20 at the normal interval)
    listRuns.mockResolvedValue({ runs: [], total: 0 } as any);
    await advance(100000); // the next try, however far the backoff has gone
    expect(model.error).toBeNull();
    const answered = listRuns.mock.calls.length;
    await advance(5000);
    expect(listRuns.mock.calls.length - answered).toBeGreaterThanOrEqual(4);
  });

  it('not at all with an interval of 0', async () => {
    model.pollInterval = 0;
    model.visible = true;
    await advance(100);
    const shown = listRuns.mock.calls.length;
    await advance(5000);
    expect(listRuns.mock.calls.length).toBe(shown);
  });
});
