// A throw-away certificate authority for the TLS tests, made with the `openssl` command-line
// tool at test time (nothing is checked in): a CA, and leaf certificates it signs for
// "localhost" + 127.0.0.1 (valid), for another name only (hostname mismatch), and one whose
// validity ended in the past (expired). Each call makes a fresh temporary directory; remove()
// deletes it. Synchronous (execFileSync): a few EC P-256 keys take milliseconds.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

function openssl(args, cwd) {
  try {
    return execFileSync('openssl', args, { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (e) {
    throw new Error(`openssl ${args.join(' ')} failed: ${e.stderr?.toString() ?? e.message}`);
  }
}

// The CA signs with `openssl ca` (not `x509 -req`) because only `ca` takes explicit start and
// end dates in OpenSSL 3.0, which the expired leaf needs.
const CA_CONFIG = `
[ ca ]
default_ca = test_ca
[ test_ca ]
dir = .
database = index.txt
new_certs_dir = .
serial = serial
default_md = sha256
policy = any
copy_extensions = copy
unique_subject = no
[ any ]
commonName = supplied
`;

function makeLeaf(dir, name, sans, dates) {
  const key = path.join(dir, `${name}.key`);
  const csr = path.join(dir, `${name}.csr`);
  const cert = path.join(dir, `${name}.pem`);
  openssl(['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes',
           '-keyout', key, '-out', csr, '-subj', `/CN=${name}`,
           '-addext', `subjectAltName=${sans}`,
           '-addext', 'extendedKeyUsage=serverAuth',
           '-addext', 'basicConstraints=critical,CA:FALSE'], dir);
  openssl(['ca', '-batch', '-config', 'ca.cnf', '-cert', 'ca.pem', '-keyfile', 'ca.key',
           '-in', csr, '-out', cert, '-notext', ...dates], dir);
  return { key, cert };
}

// Returns { dir, caFile, valid: {key, cert}, wrongHost: {...}, expired: {...}, pem(file), remove() }.
export function makeTestCa() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ringcast-ca-'));
  fs.writeFileSync(path.join(dir, 'ca.cnf'), CA_CONFIG);
  fs.writeFileSync(path.join(dir, 'index.txt'), '');
  fs.writeFileSync(path.join(dir, 'serial'), '1000\n');
  openssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes',
           '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '2', '-subj', '/CN=ringcast test CA',
           '-addext', 'basicConstraints=critical,CA:TRUE',
           '-addext', 'keyUsage=critical,keyCertSign,cRLSign'], dir);
  const soon = ['-days', '2'];
  const valid = makeLeaf(dir, 'localhost', 'DNS:localhost,IP:127.0.0.1', soon);
  const wrongHost = makeLeaf(dir, 'elsewhere', 'DNS:elsewhere.invalid', soon);
  const expired = makeLeaf(dir, 'expired', 'DNS:localhost,IP:127.0.0.1',
                           ['-startdate', '20200101000000Z', '-enddate', '20200102000000Z']);
  return {
    dir,
    caFile: path.join(dir, 'ca.pem'),
    valid, wrongHost, expired,
    pem: (file) => fs.readFileSync(file),
    remove: () => fs.rmSync(dir, { recursive: true, force: true }),
  };
}
