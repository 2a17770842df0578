import { sha256Bytes } from '../hash';

function digest(text: string): string {
  let out = '';
  for (const b of sha256Bytes(new TextEncoder().encode(text))) {
    out += b.toString(16).padStart(2, '0');
  }
  return out;
}

// The test vectors of FIPS 180-2 (appendix B) and the empty input.
describe('sha256Bytes', () => {
  it('hashes the empty input', () => {
    expect(digest('')).toBe('e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
  });

  it('hashes a one-block message', () => {
    expect(digest('abc')).toBe('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
  });

  it('hashes a 56-byte message (the padding takes a second block)', () => {
    expect(digest('abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq')).toBe(
      '248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1'
    );
  });

  it('hashes a million bytes', () => {
    expect(digest('a'.repeat(1_000_000))).toBe(
      'cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0'
    );
  });
});
