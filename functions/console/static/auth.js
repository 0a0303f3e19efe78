// Sign-in. Locally the admin API answers loopback callers only, and no sign-in is needed (config.signIn is
// null). In the cloud the console signs in at the Cognito user pool's hosted login (config.signIn: its
// base URL, the console's public app client and the scopes): OAuth 2.0 authorization code with PKCE
// (S256), tokens kept in this tab's sessionStorage, the access token sent as a bearer token to the admin
// API's /console/admin/... routes (the API's JWT authorizer checks it: Cognito puts the client id in the
// access token's client_id claim, which the authorizer accepts as the audience), refreshed with the refresh
// token when it is about to expire.
import { h } from './ui.js'

const TOKENS = 'lifecycle.console.tokens'
const PENDING = 'lifecycle.console.signIn'
//: a token this close to its expiry is refreshed first (clocks differ a little; a request takes time)
const MARGIN_MS = 60 * 1000

function base64url (bytes) {
  let text = ''
  for (const byte of bytes) text += String.fromCharCode(byte)
  return btoa(text).replaceAll('+', '-').replaceAll('/', '_').replace(/=+$/, '')
}

function randomText (bytes) {
  return base64url(crypto.getRandomValues(new Uint8Array(bytes)))
}

/** The PKCE challenge of a verifier: base64url(SHA-256(verifier)), RFC 7636's S256. */
async function challengeOf (verifier) {
  const digest = await crypto.subtle.digest('SHA-256', new TextEncoder().encode(verifier))
  return base64url(new Uint8Array(digest))
}

/** Where the hosted login sends the user back: the console's own address (registered on the client). */
function redirectUri () {
  return `${window.location.origin}/`
}

function stored (key) {
  try {
    return JSON.parse(sessionStorage.getItem(key))
  } catch {
    return null
  }
}

/** Leave for the hosted login; the page comes back to `/?code=...&state=...` (the screen it was on kept). */
async function startSignIn (signIn) {
  const verifier = randomText(48)
  const state = randomText(24)
  sessionStorage.removeItem(TOKENS)
  sessionStorage.setItem(PENDING, JSON.stringify({ state, verifier, hash: window.location.hash }))
  const url = new URL(`${signIn.url}/oauth2/authorize`)
  url.search = new URLSearchParams({
    response_type: 'code',
    client_id: signIn.clientId,
    redirect_uri: redirectUri(),
    scope: signIn.scopes.join(' '),
    state,
    code_challenge: await challengeOf(verifier),
    code_challenge_method: 'S256'
  }).toString()
  window.location.assign(url.href)
}

/** A call to the token endpoint (a form post: no preflight); its JSON answer, or an Error. */
async function tokenRequest (signIn, fields) {
  const response = await fetch(`${signIn.url}/oauth2/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ client_id: signIn.clientId, ...fields }).toString(),
    credentials: 'omit'
  })
  if (!response.ok) throw new Error(`the sign-in service refused the request (${response.status})`)
  return response.json()
}

/** Keep a token answer (a refresh answers no new refresh token, nor always an ID token: the old ones stay). */
function keep (answer, previous = null) {
  const tokens = {
    access: answer.access_token,
    id: answer.id_token || previous?.id || null,
    refresh: answer.refresh_token || previous?.refresh || null,
    expiresAt: Date.now() + Number(answer.expires_in || 0) * 1000
  }
  sessionStorage.setItem(TOKENS, JSON.stringify(tokens))
  return tokens
}

let refreshing = null

/** A valid access token: the kept one, or a refreshed one (one refresh at a time for every caller). */
async function accessToken (signIn) {
  const tokens = stored(TOKENS)
  if (tokens?.access && tokens.expiresAt - MARGIN_MS > Date.now()) return tokens.access
  if (tokens?.refresh) {
    refreshing ??= tokenRequest(signIn, { grant_type: 'refresh_token', refresh_token: tokens.refresh })
      .then(answer => keep(answer, tokens))
      .finally(() => { refreshing = null })
    try {
      return (await refreshing).access
    } catch {
      // the refresh token expired or was revoked: sign in again
    }
  }
  await startSignIn(signIn)
  throw new Error('Signing in again…')
}

/** The headers that carry the signed-in user to the admin API ({} without sign-in). */
export async function signInHeaders (config) {
  if (!config?.signIn) return {}
  return { authorization: `Bearer ${await accessToken(config.signIn)}` }
}

/** Who signed in, from the ID token's claims (shown, never trusted: the API checks the access token). */
function signedInAs () {
  const id = stored(TOKENS)?.id
  try {
    const payload = id.split('.')[1].replaceAll('-', '+').replaceAll('_', '/')
    const claims = JSON.parse(new TextDecoder().decode(Uint8Array.from(atob(payload), c => c.charCodeAt(0))))
    return claims.email || claims['cognito:username'] || ''
  } catch {
    return ''
  }
}

/** Sign out: the refresh token revoked, this tab's tokens dropped, then the hosted login's own session. */
async function signOut (signIn) {
  const tokens = stored(TOKENS)
  sessionStorage.removeItem(TOKENS)
  if (tokens?.refresh) {
    await fetch(`${signIn.url}/oauth2/revoke`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ token: tokens.refresh, client_id: signIn.clientId }).toString(),
      credentials: 'omit'
    }).catch(() => null)
  }
  window.location.assign(logoutUrl(signIn))
}

function logoutUrl (signIn) {
  const url = new URL(`${signIn.url}/logout`)
  url.search = new URLSearchParams({ client_id: signIn.clientId, logout_uri: redirectUri() }).toString()
  return url.href
}

function showAccount (signIn) {
  const who = signedInAs()
  document.getElementById('account').replaceChildren(
    who ? h('span', { class: 'signed-in-as' }, who, ' ') : '',
    h('a', {
      href: logoutUrl(signIn),
      onclick: event => {
        event.preventDefault()
        signOut(signIn)
      }
    }, 'Sign out')
  )
}

function showProblem (signIn, message) {
  document.getElementById('view').replaceChildren(
    h('h1', {}, 'Sign-in'),
    h('p', { role: 'alert' }, message),
    h('p', {}, h('button', { type: 'button', onclick: () => startSignIn(signIn) }, 'Sign in again'))
  )
}

/** Back from the hosted login: the state checked, the code exchanged (with the verifier), the address cleaned. */
async function finishSignIn (signIn, params) {
  const pending = stored(PENDING)
  sessionStorage.removeItem(PENDING)
  // the code and state leave the address (and the history) at once, whatever happens next
  window.history.replaceState(null, '', `/${pending?.hash || ''}`)
  // the state first: an address this page did not start (a crafted link's error_description) shows nothing of its own
  if (!pending || !pending.state || params.get('state') !== pending.state) {
    showProblem(signIn, params.has('error')
      ? 'The sign-in did not succeed.'
      : 'This sign-in was not started from this page, so it was not used.')
    return false
  }
  if (params.has('error')) {
    showProblem(signIn, `The sign-in did not succeed: ${params.get('error_description') || params.get('error')}.`)
    return false
  }
  try {
    keep(await tokenRequest(signIn, {
      grant_type: 'authorization_code',
      code: params.get('code'),
      redirect_uri: redirectUri(),
      code_verifier: pending.verifier
    }))
  } catch (error) {
    showProblem(signIn, `The sign-in could not be completed: ${error.message}.`)
    return false
  }
  return true
}

/** Start the page: true when it may go on (signed in, or no sign-in needed). */
export async function ensureSignedIn (config) {
  const signIn = config?.signIn
  if (!signIn) return true
  const params = new URLSearchParams(window.location.search)
  if (params.has('code') || params.has('error')) {
    if (!(await finishSignIn(signIn, params))) return false
  } else if (!stored(TOKENS)) {
    await startSignIn(signIn)
    return false
  }
  showAccount(signIn)
  return true
}
