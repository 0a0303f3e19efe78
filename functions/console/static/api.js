// The admin API, as the console calls it: JSON in and out, versions in If-Match, errors that name the field.
import { signInHeaders } from './auth.js'

let config = null

/** Where the admin API is and how to sign in (config.json, made per deployment). */
export async function loadConfig () {
  if (config === null) {
    const response = await fetch('/console/config.json', { cache: 'no-store' })
    config = await response.json()
  }
  return config
}

/** A refused call: the status, the API's code and message, and the field it names (if any). */
export class ApiError extends Error {
  constructor (status, body) {
    super(body?.message || `the request failed (${status})`)
    this.status = status
    this.code = body?.code || null
    this.field = body?.field || null
  }
}

/**
 * Call the admin API: `api('GET', '/admin/rules')`. Returns { data, version } (version: the ETag, for
 * If-Match); throws ApiError when refused. `headers`: more headers to send (e.g. an idempotency-key).
 */
export async function api (method, path, { body, version, query, headers: extra } = {}) {
  const { apiBase } = await loadConfig()
  const url = new URL(apiBase + path, window.location.origin)
  for (const [key, value] of Object.entries(query || {})) {
    if (value !== undefined && value !== null && value !== '') url.searchParams.set(key, value)
  }
  const headers = { accept: 'application/json', ...(extra || {}), ...(await signInHeaders(config)) }
  // A change always goes as JSON, even with nothing to say ({}): the API refuses a change of another
  // content type (a cross-site form cannot send JSON without the browser asking first).
  if (body === undefined && method !== 'GET' && method !== 'HEAD') body = {}
  if (body !== undefined) headers['content-type'] = 'application/json'
  if (version !== undefined && version !== null) headers['if-match'] = String(version)
  const response = await fetch(url, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    credentials: 'same-origin'
  })
  const text = await response.text()
  const data = text ? JSON.parse(text) : null
  if (!response.ok) throw new ApiError(response.status, data)
  return { data, version: (response.headers.get('etag') || '').replaceAll('"', '') || null }
}
