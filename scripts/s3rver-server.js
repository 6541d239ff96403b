// s3rver (npm, https://github.com/jamhall/s3rver), the third independent S3 implementation
// the tests run against, started by tests/common/s3server.rs:
//
//   node scripts/s3rver-server.js PORT DATA_DIR
//
// Listens on 127.0.0.1:PORT (path-style buckets, credentials S3RVER/S3RVER) and exits when its
// stdin closes, so it dies with the test process that started it. It plays a server whose
// ListObjects answers carry no ETag (the field is optional in practice, and some servers leave
// it out): the ETags of listed objects are dropped from every listing before it is encoded.
'use strict';

const S3rver = require('s3rver');

const [port, directory] = process.argv.slice(2);
if (!port || !directory) {
  console.error('usage: node s3rver-server.js PORT DATA_DIR');
  process.exit(2);
}

process.stdin.on('data', () => {});
process.stdin.on('end', () => process.exit(0));
process.stdin.on('error', () => process.exit(0));

const server = new S3rver({
  address: '127.0.0.1',
  port: Number(port),
  directory,
  silent: false,
  vhostBuckets: false,
});

// The second middleware encodes plain-object bodies as XML after the routes ran; this one runs
// inside it, so it sees the listing as an object.
server.middleware.splice(2, 0, async (ctx, next) => {
  await next();
  const listing = ctx.body && ctx.body.ListBucketResult;
  if (listing && Array.isArray(listing.Contents)) {
    for (const entry of listing.Contents) {
      delete entry.ETag;
    }
  }
});

server.run().then(
  address => console.log(`s3rver listening on ${address.address}:${address.port}`),
  err => {
    console.error(`s3rver did not start: ${err.stack || err}`);
    process.exit(1);
  },
);
