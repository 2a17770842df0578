import { parseEdited, parseValues, readEdits, toText } from '../params';

describe('parseEdited', () => {
  it('keeps the type of a number', () => {
    expect(parseEdited(' 0.25 ', 0.5)).toBe(0.25);
    expect(parseEdited('3', 1)).toBe(3);
    expect(parseEdited('nan', 1.5)).toBe('NaN');
  });

  it('refuses a number that is not one', () => {
    expect(() => parseEdited('abc', 1)).toThrow('expects a number');
    expect(() => parseEdited('  ', 1)).toThrow('expects a number');
  });

  it('reads booleans in their usual spellings', () => {
    expect(parseEdited('Yes', false)).toBe(true);
    expect(parseEdited('0', true)).toBe(false);
    expect(() => parseEdited('maybe', true)).toThrow('expects true or false');
  });

  it('keeps a string as typed, spaces included', () => {
    expect(parseEdited(' cd ', 'lbfgs')).toBe(' cd ');
  });

  it('reads lists, objects and null as JSON', () => {
    expect(parseEdited('[1, 2]', [3])).toEqual([1, 2]);
    expect(parseEdited('{"a": 1}', null)).toEqual({ a: 1 });
    expect(() => parseEdited('[1,', [3])).toThrow('expects a JSON value');
  });
});

describe('parseValues', () => {
  it('splits on commas with the original type', () => {
    expect(parseValues('0.1, 0.2,,0.5', 1.0)).toEqual([0.1, 0.2, 0.5]);
  });

  it('names the bad item', () => {
    expect(() => parseValues('0.1, x', 1.0)).toThrow('"x" expects a number');
    expect(() => parseValues(' , ', 1.0)).toThrow('needs at least one value');
  });
});

describe('readEdits', () => {
  const params = { alpha: 0.5, n: 3, solver: 'cd' };
  const texts = Object.fromEntries(Object.entries(params).map(([k, v]) => [k, toText(v)]));

  it('asks for nothing when nothing changed', () => {
    const edits = readEdits(params, texts);
    expect(edits.overrides).toEqual({});
    expect(edits.problems).toEqual({});
    expect([...edits.floats]).toEqual(['alpha']);
  });

  it('sends the changed values, a float typed with a dot as a float', () => {
    const edits = readEdits(params, { ...texts, n: '4.0', solver: 'lbfgs' });
    expect(edits.overrides).toEqual({ n: 4, solver: 'lbfgs' });
    expect(edits.floats.has('n')).toBe(true);
  });

  it('reports a bad text and a blocked param', () => {
    const edits = readEdits(
      params,
      { ...texts, n: 'many', alpha: '1' },
      { alpha: { overridable: false, reason: 'set from a literal' } }
    );
    expect(edits.problems).toEqual({
      n: 'expects a number',
      alpha: 'is not overridable: set from a literal'
    });
  });
});
