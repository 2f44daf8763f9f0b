// A real OpenID provider (the npm package oidc-provider) for tokenbroker's integration tests.
// One client per grant, short token lifetimes, refresh-token rotation with reuse detection,
// login and consent pages a test can drive over HTTP, and a test-only admin API under /_admin
// that records exactly what the token endpoint received. See README.md.
import * as http from 'node:http';
import * as querystring from 'node:querystring';

import Provider from 'oidc-provider';

function usage(msg) {
  process.stderr.write(`oidc-peer: ${msg}\nusage: node server.mjs [--port N] [--access-ttl SECONDS]\n`);
  process.exit(2);
}

const opts = { port: 0, accessTtl: 5 };
for (let i = 2; i < process.argv.length; i += 1) {
  const a = process.argv[i];
  const v = process.argv[i + 1];
  if (a === '--port' && v !== undefined) { opts.port = Number(v); i += 1; }
  else if (a === '--access-ttl' && v !== undefined) { opts.accessTtl = Number(v); i += 1; }
  else usage(`unknown argument ${a}`);
}
if (!Number.isInteger(opts.port) || !Number.isInteger(opts.accessTtl) || opts.accessTtl < 1) {
  usage('--port and --access-ttl take whole numbers');
}

// The people who can log in on the login page.
const accounts = { alice: { password: 'alice-password', name: 'Alice Example' } };

// One client per grant and client authentication method. The secrets are test data; the
// client_secret_basic one has characters that RFC 6749 §2.3.1 form-encoding must escape.
export const clients = [
  {
    client_id: 'cc-post',
    client_secret: 'cc-post-secret',
    grant_types: ['client_credentials'],
    response_types: [],
    redirect_uris: [],
    token_endpoint_auth_method: 'client_secret_post',
    scope: 'api:read api:write',
  },
  {
    client_id: 'cc-basic',
    client_secret: 'b4sic:s3cret+/ =%',
    grant_types: ['client_credentials'],
    response_types: [],
    redirect_uris: [],
    token_endpoint_auth_method: 'client_secret_basic',
    scope: 'api:read',
  },
  {
    // A native app (RFC 8252): loopback redirects match on any port.
    client_id: 'app',
    client_secret: 'app-secret',
    application_type: 'native',
    grant_types: ['authorization_code', 'refresh_token'],
    response_types: ['code'],
    redirect_uris: ['http://127.0.0.1/callback'],
    token_endpoint_auth_method: 'client_secret_post',
  },
  {
    client_id: 'app-basic',
    client_secret: 'app-basic-secret',
    application_type: 'native',
    grant_types: ['authorization_code', 'refresh_token'],
    response_types: ['code'],
    redirect_uris: ['http://127.0.0.1/callback'],
    token_endpoint_auth_method: 'client_secret_basic',
  },
];

// What the admin API exposes.
const tokenRequests = [];   // every POST /token: what arrived and what was answered
const grantsByClient = new Map();  // client_id → Set of grant ids
const faults = [];          // queued answers for the next token requests

let handler = null;  // the provider's request handler, set once the port (and issuer) is known
const server = http.createServer((req, res) => {
  route(req, res).catch((err) => {
    process.stderr.write(`oidc-peer: ${req.method} ${req.url}: ${err.stack}\n`);
    if (!res.headersSent) send(res, 500, { error: 'peer_failure', message: String(err) });
  });
});

function send(res, status, body, headers = {}) {
  const text = typeof body === 'string' ? body : JSON.stringify(body);
  res.writeHead(status, {
    'content-type': typeof body === 'string' ? 'text/html; charset=utf-8' : 'application/json',
    'cache-control': 'no-store',
    ...headers,
  });
  res.end(text);
}

function readBody(req, limit = 64 * 1024) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    let size = 0;
    req.on('data', (c) => {
      size += c.length;
      if (size > limit) { reject(new Error('body too large')); req.destroy(); return; }
      chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

const escape = (s) => String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

function page(title, inner) {
  return `<!doctype html><html><head><title>${escape(title)}</title></head><body>`
    + `<h1>${escape(title)}</h1>${inner}</body></html>`;
}

async function route(req, res) {
  const url = new URL(req.url, 'http://peer');
  if (url.pathname.startsWith('/_admin/')) return admin(req, res, url);
  if (url.pathname.startsWith('/interaction/')) return interaction(req, res, url);
  if (url.pathname === '/token' && req.method === 'POST') return token(req, res);
  return handler(req, res);
}

// POST /token: recorded byte for byte, then answered by a queued fault or by the provider.
async function token(req, res) {
  const raw = await readBody(req);
  const form = querystring.parse(raw);
  const record = {
    at: Date.now(),
    grant_type: form.grant_type ?? null,
    body: raw,
    authorization: req.headers.authorization ?? null,
    content_type: req.headers['content-type'] ?? null,
    sent_refresh_token: form.refresh_token ?? null,
  };
  tokenRequests.push(record);
  req.peerRecord = record;  // for the grant.error listener below
  const fault = faults[0];
  if (fault) {
    fault.count -= 1;
    if (fault.count <= 0) faults.shift();
    record.status = fault.status;
    record.fault = true;
    const headers = fault.retry_after ? { 'retry-after': String(fault.retry_after) } : {};
    return send(res, fault.status, fault.body ?? { error: 'server_error' }, headers);
  }
  // The provider reads a body already consumed from req.body (lib/shared/selective_body.js).
  req.body = raw;
  const end = res.end.bind(res);
  res.end = (chunk, ...rest) => {
    record.status = res.statusCode;
    try {
      const answer = JSON.parse(Buffer.isBuffer(chunk) ? chunk.toString('utf8') : String(chunk));
      record.access_token = answer.access_token ?? null;
      record.issued_refresh_token = answer.refresh_token ?? null;
      record.expires_in = answer.expires_in ?? null;
      record.scope = answer.scope ?? null;
      record.error = answer.error ?? null;
      record.error_description = answer.error_description ?? null;
    } catch { /* not JSON */ }
    return end(chunk, ...rest);
  };
  return handler(req, res);
}

async function admin(req, res, url) {
  const path = url.pathname;
  const body = req.method === 'POST' ? JSON.parse((await readBody(req)) || '{}') : {};
  if (path === '/_admin/token-requests' && req.method === 'GET') return send(res, 200, tokenRequests);
  if (path === '/_admin/token-requests' && req.method === 'DELETE') {
    tokenRequests.length = 0;
    return send(res, 200, { cleared: true });
  }
  if (path === '/_admin/fault' && req.method === 'POST') {
    faults.push({ status: body.status ?? 503, count: body.count ?? 1, retry_after: body.retry_after,
      body: body.body });
    return send(res, 200, { queued: faults.length });
  }
  if (path === '/_admin/revoke' && req.method === 'POST') {
    // Revokes every grant of a client: its refresh tokens then draw invalid_grant.
    const ids = [...(grantsByClient.get(body.client_id) ?? [])];
    for (const id of ids) {
      await provider.Grant.adapter.destroy(id);
      await provider.RefreshToken.adapter.revokeByGrantId(id);
    }
    grantsByClient.delete(body.client_id);
    return send(res, 200, { revoked: ids.length });
  }
  if (path === '/_admin/mint-refresh-token' && req.method === 'POST') {
    // A refresh token as if `account` had logged in to `client_id` (seeds a broker's config).
    const client = await provider.Client.find(body.client_id);
    if (!client || !accounts[body.account]) return send(res, 400, { error: 'unknown client or account' });
    const scope = body.scope ?? 'openid offline_access';
    const grant = new provider.Grant({ accountId: body.account, clientId: client.clientId });
    grant.addOIDCScope(scope);
    const grantId = await grant.save();
    const rt = new provider.RefreshToken({
      accountId: body.account, client, grantId, scope, gty: 'authorization_code',
      authTime: Math.floor(Date.now() / 1000), expiresWithSession: false,
    });
    const value = await rt.save();
    return send(res, 200, { refresh_token: value });
  }
  return send(res, 404, { error: 'not_found' });
}

// The login and consent pages (what a person sees in the browser).
async function interaction(req, res, url) {
  const parts = url.pathname.split('/');  // ['', 'interaction', uid, action?]
  const action = parts[3];
  const details = await provider.interactionDetails(req, res);
  const { uid, prompt, params, session } = details;
  if (parts[2] !== uid) return send(res, 400, page('Wrong interaction', ''));
  if (req.method === 'GET' && !action) {
    if (prompt.name === 'login') {
      return send(res, 200, page('Sign in', `<form method="post" action="/interaction/${uid}/login">`
        + '<input name="login"><input name="password" type="password">'
        + '<button type="submit">Sign in</button></form>'));
    }
    return send(res, 200, page('Authorize', `<p>${escape(params.client_id)} asks for `
      + `${escape(params.scope)}</p><form method="post" action="/interaction/${uid}/confirm">`
      + `<button type="submit">Allow</button></form><form method="post" `
      + `action="/interaction/${uid}/abort"><button type="submit">Deny</button></form>`));
  }
  if (req.method !== 'POST') return send(res, 405, page('Method not allowed', ''));
  const form = querystring.parse(await readBody(req));
  if (action === 'login') {
    const account = accounts[form.login];
    if (!account || account.password !== form.password) {
      return send(res, 401, page('Sign in failed', `<form method="post" action="/interaction/${uid}/login">`
        + '<input name="login"><input name="password" type="password"></form>'));
    }
    return provider.interactionFinished(req, res, { login: { accountId: form.login } },
      { mergeWithLastSubmission: false });
  }
  if (action === 'confirm') {
    let grant = details.grantId ? await provider.Grant.find(details.grantId) : null;
    if (!grant) grant = new provider.Grant({ accountId: session.accountId, clientId: params.client_id });
    const missing = prompt.details;
    if (missing.missingOIDCScope) grant.addOIDCScope(missing.missingOIDCScope.join(' '));
    if (missing.missingOIDCClaims) grant.addOIDCClaims(missing.missingOIDCClaims);
    for (const [indicator, scopes] of Object.entries(missing.missingResourceScopes ?? {})) {
      grant.addResourceScope(indicator, scopes.join(' '));
    }
    const grantId = await grant.save();
    return provider.interactionFinished(req, res, { consent: { grantId } },
      { mergeWithLastSubmission: true });
  }
  if (action === 'abort') {
    return provider.interactionFinished(req, res, {
      error: 'access_denied', error_description: 'the person denied the request',
    }, { mergeWithLastSubmission: false });
  }
  return send(res, 404, page('Not found', ''));
}

let provider;
server.listen(opts.port, '127.0.0.1', () => {
  const { port } = server.address();
  const issuer = `http://127.0.0.1:${port}`;
  provider = new Provider(issuer, {
    clients,
    scopes: ['openid', 'offline_access', 'api:read', 'api:write'],
    claims: { openid: ['sub'], profile: ['name'] },
    findAccount: async (ctx, id) => (accounts[id] ? {
      accountId: id,
      claims: async () => ({ sub: id, name: accounts[id].name }),
    } : undefined),
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      introspection: { enabled: true },
      revocation: { enabled: true },
      userinfo: { enabled: true },
    },
    interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
    pkce: { methods: ['S256'], required: () => true },
    // Every refresh returns a new refresh token; presenting a replaced one revokes the grant.
    rotateRefreshToken: true,
    // Like Azure AD: a client allowed the refresh_token grant gets one without prompt=consent.
    issueRefreshToken: async (ctx, client) => client.grantTypeAllowed('refresh_token'),
    ttl: {
      AccessToken: opts.accessTtl,
      ClientCredentials: opts.accessTtl,
      AuthorizationCode: 60,
      IdToken: 3600,
      RefreshToken: 3600,
      Grant: 3600,
      Interaction: 600,
      Session: 3600,
    },
    cookies: { keys: ['oidc-peer-test-only-cookie-key'] },
  });
  provider.on('grant.saved', (grant) => {
    if (!grantsByClient.has(grant.clientId)) grantsByClient.set(grant.clientId, new Set());
    grantsByClient.get(grant.clientId).add(grant.jti);
  });
  // oidc-provider hides why a grant failed ("grant request is invalid"); tests want to know.
  provider.on('grant.error', (ctx, err) => {
    if (ctx.req.peerRecord) ctx.req.peerRecord.error_detail = err.error_detail ?? err.message;
  });
  provider.on('server_error', (ctx, err) => process.stderr.write(`oidc-peer: ${err.stack}\n`));
  handler = provider.callback();
  process.stdout.write(`oidc-peer listening on ${issuer}\n`);
});

for (const sig of ['SIGTERM', 'SIGINT']) {
  process.on(sig, () => server.close(() => process.exit(0)));
}
