// A real OpenID provider for the console's SSO tests: oidc-provider in development mode, on a
// free loopback port. Usage: node idp.mjs <client_id> <redirect_uri>
// Prints `issuer <url>` once it listens. Every login name is an account whose `sub` is that
// name; any password is accepted (the dev login form), and the consent form grants `openid`.
import http from 'node:http';
import Provider from 'oidc-provider';

const [clientId, redirectUri] = process.argv.slice(2);
if (!clientId || !redirectUri) {
  console.error('usage: node idp.mjs <client_id> <redirect_uri>');
  process.exit(2);
}

const server = http.createServer();
server.listen(0, '127.0.0.1', () => {
  const { port } = server.address();
  const issuer = `http://127.0.0.1:${port}`;
  const provider = new Provider(issuer, {
    clients: [{
      client_id: clientId,
      token_endpoint_auth_method: 'none',
      redirect_uris: [redirectUri],
      grant_types: ['authorization_code'],
      response_types: ['code'],
    }],
    pkce: { required: () => true },
    claims: { openid: ['sub'], email: ['email'], profile: ['name'] },
    cookies: { keys: ['tollgate-test-idp-cookie-key'] },
    async findAccount(ctx, id) {
      return {
        accountId: id,
        async claims() {
          return { sub: id, email: `${id}@idp.test`, name: id };
        },
      };
    },
  });
  provider.on('server_error', (ctx, error) => console.error('server_error', error));
  // The dev mode's warnings go to stderr; the test reads only stdout.
  server.on('request', provider.callback());
  console.log(`issuer ${issuer}`);
  // Whatever else is said goes to stderr: the test reads one line of stdout, then stops.
  console.log = console.error;
  console.info = console.error;
});

process.on('SIGTERM', () => process.exit(0));
