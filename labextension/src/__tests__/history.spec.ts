import { HISTORY_SIZE, pushHistory, RunsModel } from '../model';
import * as api from '../api';

jest.mock('../api', () => {
  const actual = jest.requireActual('../api');
  return { ...actual, listRuns: jest.fn() };
});

const listRuns = api.listRuns as jest.MockedFunction<typeof api.listRuns>;

describe('pushHistory', () => {
  it('puts the filter first and drops its older copy', () => {
    expect(pushHistory(['a', 'b', 'c'], 'b')).toEqual(['b', 'a', 'c']);
  });

  it(`keeps at most ${HISTORY_SIZE} filters`, () => {
    const full = Array.from({ length: HISTORY_SIZE }, (_, k) => `f${k}`);
    const next = pushHistory(full, 'new');
    expect(next).toHaveLength(HISTORY_SIZE);
    expect(next[0]).toBe('new');
    expect(next).not.toContain(`f${HISTORY_SIZE - 1}`);
  });
});

describe('the model keeps the filters the server accepted', () => {
  let model: RunsModel;

  beforeEach(() => {
    listRuns.mockReset();
    model = new RunsModel();
    model.pollInterval = 0;
  });

  afterEach(() => model.dispose());

  /** Resolves with the next persisted query. */
  function nextQuery(): Promise<{ history: string[] }> {
    return new Promise(resolve => {
      const slot = (_: RunsModel, state: { history: string[] }) => {
        model.queryChanged.disconnect(slot);
        resolve(state);
      };
      model.queryChanged.connect(slot);
    });
  }

  it('adds an accepted filter, trimmed, once', async () => {
    listRuns.mockResolvedValue({ runs: [], total: 0 } as any);
    model.restore({ filter: '', history: ['params.a = 1'] }, null);
    let query = nextQuery();
    model.setFilter('  metrics.m < 2 ');
    expect((await query).history).toEqual(['metrics.m < 2', 'params.a = 1']);
    query = nextQuery();
    model.setFilter('params.a = 1');
    expect((await query).history).toEqual(['params.a = 1', 'metrics.m < 2']);
  });

  it('leaves out a filter the server refused', async () => {
    listRuns.mockRejectedValue(new api.NbtraceError('bad filter', 400, 'server'));
    model.restore({ filter: '', history: ['params.a = 1'] }, null);
    const query = nextQuery();
    model.setFilter('params.a ==');
    expect((await query).history).toEqual(['params.a = 1']);
    expect(model.filterError).toBe('bad filter');
  });
});
