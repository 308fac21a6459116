/** The content types accepted from a provider, recognised from their first bytes. */
const SIGNATURES: { contentType: string; matches: (head: Buffer) => boolean }[] = [
  {
    contentType: 'image/png',
    matches: (h) => h.subarray(0, 8).equals(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])),
  },
  { contentType: 'image/jpeg', matches: (h) => h[0] === 0xff && h[1] === 0xd8 && h[2] === 0xff },
  {
    contentType: 'image/webp',
    matches: (h) => h.toString('latin1', 0, 4) === 'RIFF' && h.toString('latin1', 8, 12) === 'WEBP',
  },
  { contentType: 'image/gif', matches: (h) => ['GIF87a', 'GIF89a'].includes(h.toString('latin1', 0, 6)) },
  { contentType: 'video/mp4', matches: (h) => h.toString('latin1', 4, 8) === 'ftyp' },
];

export const SNIFF_BYTES = 12;

/** Returns the content type that the leading bytes prove, or undefined for anything else. */
export function sniffContentType(head: Buffer): string | undefined {
  if (head.length < SNIFF_BYTES) return undefined;
  return SIGNATURES.find((signature) => signature.matches(head))?.contentType;
}
