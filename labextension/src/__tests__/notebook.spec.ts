import { diffCells, ICurrentCell, toPython } from '../notebook';

function cells(...hashes: string[]): ICurrentCell[] {
  return hashes.map((sha256, index) => ({ index, source: `# ${sha256}`, sha256 }));
}

describe('diffCells', () => {
  it('finds nothing between equal notebooks', () => {
    expect(diffCells(['a', 'b'], cells('a', 'b'))).toEqual([]);
  });

  it('pairs a replaced cell as an edit', () => {
    const changes = diffCells(['a', 'b', 'c'], cells('a', 'x', 'c'));
    expect(changes).toHaveLength(1);
    expect(changes[0]).toMatchObject({ kind: 'edited', recordedIndex: 1, recordedHash: 'b' });
    expect(changes[0].current?.sha256).toBe('x');
  });

  it('tells additions from removals', () => {
    const changes = diffCells(['a', 'b'], cells('a', 'b', 'new'));
    expect(changes.map(c => c.kind)).toEqual(['added']);
    const removed = diffCells(['a', 'gone', 'b'], cells('a', 'b'));
    expect(removed).toEqual([{ kind: 'removed', recordedIndex: 1, recordedHash: 'gone' }]);
  });

  it('pairs edits in a gap and leaves the extra as an addition', () => {
    const changes = diffCells(['a', 'b', 'z'], cells('a', 'x', 'y', 'z'));
    expect(changes.map(c => c.kind)).toEqual(['edited', 'added']);
  });
});

describe('toPython', () => {
  it('writes scalars as Python literals', () => {
    expect(toPython(null)).toBe('None');
    expect(toPython(true)).toBe('True');
    expect(toPython(false)).toBe('False');
    expect(toPython(0.5)).toBe('0.5');
    expect(toPython('it\'s "x"')).toBe('"it\'s \\"x\\""');
  });

  it('writes the server encodings of non-finite numbers as float()', () => {
    expect(toPython('NaN')).toBe("float('nan')");
    expect(toPython('-Infinity')).toBe("float('-inf')");
    expect(toPython(Infinity)).toBe("float('inf')");
  });

  it('nests lists and dicts', () => {
    expect(toPython({ a: [1, null], b: { c: false } })).toBe('{"a": [1, None], "b": {"c": False}}');
  });
});
