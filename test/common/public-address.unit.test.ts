import { checkedLookup, isPublicAddress } from '../../common/public-address';

describe('public addresses', () => {
  it.each([
    ['8.8.8.8', true],
    ['1.1.1.1', true],
    ['2606:4700:4700::1111', true],
    ['::ffff:8.8.8.8', true],
    ['64:ff9b::808:808', true],
    ['127.0.0.1', false],
    ['10.0.0.1', false],
    ['172.16.5.4', false],
    ['192.168.1.1', false],
    ['169.254.169.254', false],
    ['100.64.0.1', false],
    ['0.0.0.0', false],
    ['192.0.2.1', false],
    ['198.51.100.7', false],
    ['203.0.113.9', false],
    ['198.18.0.1', false],
    ['224.0.0.1', false],
    ['255.255.255.255', false],
    ['::1', false],
    ['::', false],
    ['fe80::1', false],
    ['fe80::1%eth0', false],
    ['fc00::1', false],
    ['fd12:3456::1', false],
    ['ff02::1', false],
    ['::ffff:127.0.0.1', false],
    ['::ffff:7f00:1', false],
    ['::ffff:169.254.169.254', false],
    ['64:ff9b::a00:1', false],
    ['2001:db8::1', false],
    ['2001::1', false],
    ['2002:c000:0204::1', false],
    ['not-an-address', false],
    ['', false],
  ])('classifies %s as public: %s', (address, expected) => {
    expect(isPublicAddress(address)).toBe(expected);
  });
});

describe('checked DNS lookups', () => {
  const lookup = (hostname: string, isAllowed: (address: string) => boolean) =>
    new Promise<{ error: Error | null; address: unknown }>((resolve) =>
      checkedLookup(isAllowed, (message) => new Error(message))(hostname, {}, (error, address) =>
        resolve({ error, address }),
      ),
    );

  it('answers with the address when every address of the name is allowed', async () => {
    expect(await lookup('127.0.0.1', () => true)).toEqual({ error: null, address: '127.0.0.1' });
  });

  it('refuses a name that resolves to an address that is not allowed, saying which', async () => {
    const { error } = await lookup('127.0.0.1', isPublicAddress);
    expect(error?.message).toBe('127.0.0.1 resolves to 127.0.0.1, which is not public');
  });
});
