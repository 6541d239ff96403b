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

const crypto = require('crypto');
const fs = require('fs');
const path = require('path');
const { Readable, Transform } = require('stream');
const { pipeline } = require('stream/promises');
const S3rver = require('s3rver');
const FilesystemStore = require('s3rver/lib/stores/filesystem');
const S3Error = require('s3rver/lib/models/error');

// s3rver 3.7 answers a PutObject (and an UploadPart) as soon as its MD5 pass has seen the body,
// before the file holding it is written out, and writes that file in place: a GET or a
// server-side copy right after the answer can read a short object (the tests saw EIO for a
// file renamed just after it was written, on a loaded machine). These two replace them: the
// answer waits until the file is complete, written beside the old one and renamed over it, so a
// reader sees the old object or the new one, never a part.
// The partial file goes in the data directory's root (a file there is no bucket): beside the
// object, its longer name would lower the longest key segment s3rver can hold below its own.
async function writeHashed(root, content, file) {
  await fs.promises.mkdir(path.dirname(file), { recursive: true });
  const md5 = crypto.createHash('md5');
  let size = 0;
  const hash = new Transform({
    transform(chunk, encoding, callback) {
      md5.update(chunk);
      size += chunk.length;
      callback(null, chunk);
    },
  });
  const source = Buffer.isBuffer(content) ? Readable.from([content]) : content;
  const partial = path.join(root, `.writing-${process.pid}-${crypto.randomBytes(6).toString('hex')}`);
  try {
    await pipeline(source, hash, fs.createWriteStream(partial));
    await fs.promises.rename(partial, file);
  } catch (err) {
    await fs.promises.rm(partial, { force: true });
    throw err;
  }
  return [size, md5.digest('hex')];
}

// s3rver writes an object's body, then its metadata and MD5 files: two PUTs of one key at once
// can leave one writer's body with the other's ETag and metadata. Here the writes of one key
// take turns (a multipart completion writes through putObject too).
const writing = new Map();
async function inTurn(id, work) {
  const mine = (writing.get(id) || Promise.resolve()).then(work, work);
  const done = mine.catch(() => {});
  writing.set(id, done);
  try {
    return await mine;
  } finally {
    if (writing.get(id) === done) writing.delete(id);
  }
}

FilesystemStore.prototype.putObject = async function putObject(object) {
  return inTurn(`${object.bucket}/${object.key}`, async () => {
    const file = this.getResourcePath(object.bucket, object.key, 'object');
    const [size, md5] = await writeHashed(this.rootDirectory, object.content, file);
    await this.putMetadata(object.bucket, object.key, object.metadata, md5);
    return { size, md5 };
  });
};

FilesystemStore.prototype.putPart = async function putPart(bucket, uploadId, partNumber, content) {
  const file = path.join(
    this.getResourcePath(bucket, undefined, 'uploads'),
    uploadId,
    partNumber.toString(),
  );
  const [size, md5] = await writeHashed(this.rootDirectory, content, file);
  await fs.promises.writeFile(`${file}.md5`, md5);
  return { size, md5 };
};

// s3rver 3.7 completes a multipart upload by streaming its part files one after the other; a
// part number never uploaded makes that stream fail outside any handler, which kills the whole
// server. S3 answers InvalidPart: so does this, and the rest is s3rver's own (it neither checks
// part ETags nor part sizes).
const completeUpload = FilesystemStore.prototype.putObjectMultipart;
FilesystemStore.prototype.putObjectMultipart = async function putObjectMultipart(
  bucket,
  uploadId,
  parts,
) {
  const dir = path.join(this.getResourcePath(bucket, undefined, 'uploads'), uploadId);
  for (const part of parts) {
    const exists = await fs.promises.access(path.join(dir, String(part.number))).then(
      () => true,
      () => false,
    );
    if (!exists) {
      throw new S3Error('InvalidPart', 'One or more of the specified parts could not be found.', {
        UploadId: uploadId,
        PartNumber: part.number,
      });
    }
  }
  return completeUpload.call(this, bucket, uploadId, parts);
};

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
