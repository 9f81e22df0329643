// Reading a ZIP a test received (yauzl, the platform's reader): every entry's bytes by name.
import yauzl from 'yauzl';

export function unzipEntries(zip: Buffer): Promise<Map<string, Buffer>> {
  return new Promise((resolve, reject) =>
    yauzl.fromBuffer(zip, { lazyEntries: true }, (err, z) => {
      if (err || !z) return reject(err);
      const out = new Map<string, Buffer>();
      z.on('error', reject);
      z.on('entry', (e: yauzl.Entry) =>
        z.openReadStream(e, (err2, s) => {
          if (err2 || !s) return reject(err2);
          const chunks: Buffer[] = [];
          s.on('data', (c: Buffer) => chunks.push(c));
          s.on('end', () => {
            out.set(e.fileName, Buffer.concat(chunks));
            z.readEntry();
          });
        }),
      );
      z.on('end', () => resolve(out));
      z.readEntry();
    }),
  );
}
