// The issuance peer for bench/tokens.py: node-oidc-provider with one client_credentials
// client (client_secret_basic), opaque access tokens (its default), in-memory adapter.
// usage: node bench/tokens_peer.mjs PORT   (oidc-provider resolved via NODE_PATH)
import Provider from 'oidc-provider';

const port = Number(process.argv[2]);
const provider = new Provider(`http://127.0.0.1:${port}`, {
  clients: [{
    client_id: 'bench',
    client_secret: 'bench-secret-bench-secret-bench-secret',
    grant_types: ['client_credentials'],
    redirect_uris: [],
    response_types: [],
    token_endpoint_auth_method: 'client_secret_basic',
    scope: 'api',
  }],
  scopes: ['api'],
  features: { clientCredentials: { enabled: true }, devInteractions: { enabled: false } },
});
provider.listen(port, '127.0.0.1', () => console.log('ready'));
