import { rerunBody } from '../api';

describe('rerunBody', () => {
  it('writes integral values named as floats as Python float literals', () => {
    const body = rerunBody({ alpha: 1, n: 2, name: 'x' }, new Set(['alpha']));
    expect(body).toBe('{"overrides":{"alpha":1.0,"n":2,"name":"x"}}');
  });

  it('leaves non-integral floats and negative ones exact', () => {
    expect(rerunBody({ a: -3, b: 0.25 }, new Set(['a', 'b']))).toBe(
      '{"overrides":{"a":-3.0,"b":0.25}}'
    );
  });

  it('adds the kernel, repeat, recorded modules and trust only when asked', () => {
    expect(
      JSON.parse(rerunBody({}, new Set(), 'py3', true, { repeat: 3, recordedModules: true }))
    ).toEqual({
      overrides: {},
      kernel_name: 'py3',
      repeat: 3,
      recorded_modules: true,
      trust: true
    });
    expect(JSON.parse(rerunBody({}, new Set(), undefined, false, { repeat: 1 }))).toEqual({
      overrides: {}
    });
  });

  it('does not touch a string that looks like the float mark', () => {
    const body = JSON.parse(rerunBody({ s: 'nbtrace-float:1' }));
    expect(body.overrides.s).toBe('nbtrace-float:1');
  });
});
