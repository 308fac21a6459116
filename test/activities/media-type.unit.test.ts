import { SNIFF_BYTES, sniffContentType } from '../../activities/media-type';

/** `head` padded with zeros to the bytes the sniffer reads. */
const leading = (...head: (number | string)[]) => {
  const bytes = Buffer.concat(
    head.map((part) => (typeof part === 'string' ? Buffer.from(part, 'latin1') : Buffer.from([part]))),
  );
  return Buffer.concat([bytes, Buffer.alloc(Math.max(0, SNIFF_BYTES - bytes.length))]);
};

describe('media type sniffing', () => {
  it.each([
    ['image/png', leading(0x89, 'PNG', 0x0d, 0x0a, 0x1a, 0x0a)],
    ['image/jpeg', leading(0xff, 0xd8, 0xff, 0xe0)],
    ['image/webp', leading('RIFF', 0x24, 0, 0, 0, 'WEBP')],
    ['image/gif', leading('GIF89a')],
    ['image/gif', leading('GIF87a')],
    ['video/mp4', leading(0, 0, 0, 0x20, 'ftypisom')],
  ])('recognises %s from its first bytes', (contentType, head) => {
    expect(sniffContentType(head)).toBe(contentType);
  });

  it.each([
    ['HTML', Buffer.from('<html>not an image</html>')],
    ['JSON', Buffer.from('{"error":"rate limited"}')],
    ['a RIFF that is not WebP', leading('RIFF', 0x24, 0, 0, 0, 'WAVE')],
    ['zeros', Buffer.alloc(64)],
  ])('refuses %s', (_label, head) => {
    expect(sniffContentType(head)).toBeUndefined();
  });

  it('needs all the bytes it reads: a PNG signature alone is not enough', () => {
    const signature = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
    expect(sniffContentType(signature)).toBeUndefined();
    expect(sniffContentType(Buffer.concat([signature, Buffer.alloc(SNIFF_BYTES - signature.length)]))).toBe(
      'image/png',
    );
  });
});
