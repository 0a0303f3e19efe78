// Drives the real analytics.js (@segment/analytics-next) in a jsdom page at a local tracking API.
//
// Usage: node drive.js '<json>' with
//   apiHost   "127.0.0.1:<port>/v1"  where the Segment.io destination sends (no CDN is ever fetched)
//   writeKey  the source's write key
//   url       the page's address (its path, query and title go into every call's context)
//   strategy  "standard" (one request per call) or "batching" (/v1/b)
//   proof     the identity proof the site's back-end rendered into the page ({"userHash": ...} or
//             {"jwt": ...}), attached to every call by a source middleware, as the README documents;
//             null for none
//   calls     [[method, ...args], ...] run in order, each awaited, e.g. ["identify", "u1", {"plan": "pro"}];
//             the first is made before the SDK has loaded, as a page's snippet makes it
//
// Prints one JSON object on stdout: the page's anonymousId and userId, each call's messageId, and every
// request the SDK made (path, status, and what each message in its body carried). Any request to another
// host is refused and reported: loading and running the SDK must not reach the internet.
'use strict'

const { JSDOM } = require('jsdom')

const config = JSON.parse(process.argv[2])
const allowed = `http://${config.apiHost.split('/')[0]}/`
const requests = []
const refused = []
const errors = []

// A page as a browser loads it: the SDK reads window, document, navigator, location and storage.
const dom = new JSDOM('<!doctype html><html><head><title>Shop</title></head><body></body></html>', {
  url: config.url,
  pretendToBeVisual: true,
})
for (const name of ['window', 'document', 'navigator', 'location', 'localStorage', 'sessionStorage']) {
  Object.defineProperty(globalThis, name, { value: dom.window[name], configurable: true, writable: true })
}

// The SDK sends with the global fetch: only the local stack may be reached.
const realFetch = globalThis.fetch
globalThis.fetch = async (url, init = {}) => {
  const target = String(url)
  if (!target.startsWith(allowed)) {
    refused.push(target)
    throw new TypeError(`refused: ${target} is not the local stack`)
  }
  const body = JSON.parse(init.body)
  const messages = (body.batch || [body]).map((m) => ({
    messageId: m.messageId,
    type: m.type,
    userId: m.userId ?? null,
    anonymousId: m.anonymousId ?? null,
    integrations: m.integrations ?? null,
  }))
  const entry = { path: new URL(target).pathname, status: null, messages }
  requests.push(entry)
  try {
    const response = await realFetch(url, init)
    entry.status = response.status
    return response
  } catch (error) {
    entry.status = String(error)
    throw error
  }
}

async function main() {
  const { AnalyticsBrowser } = require('@segment/analytics-next')
  const segmentio = { apiKey: config.writeKey, apiHost: config.apiHost, protocol: 'http' }
  if (config.strategy === 'batching') {
    segmentio.deliveryStrategy = { strategy: 'batching', config: { size: 10, timeout: 50 } }
  }
  // As a page's snippet does: load, add the middleware and make the first call without waiting for the
  // load to finish (the SDK buffers them, and adds buffered middleware before it sends buffered calls).
  const analytics = AnalyticsBrowser.load(
    {
      writeKey: config.writeKey,
      // given, so no settings are fetched from Segment's CDN; no metrics (sampleRate 0), no remote plugins
      cdnSettings: { integrations: { 'Segment.io': segmentio }, metrics: { sampleRate: 0 } },
    },
    // a refused call is reported at once rather than retried from storage; no ?ajs_ query-string calls,
    // as docs/tracking.md asks of a page whose key requires proofs
    { retryQueue: false, useQueryString: false },
  )
  analytics.on('error', (error) => errors.push(String(error.reason || error.code || error)))

  if (config.proof) {
    // The README's way: the proof rides on every call, including those that carry the stored userId.
    analytics.addSourceMiddleware(({ payload, next }) => {
      payload.obj.integrations = { ...payload.obj.integrations, Lifecycle: config.proof }
      next(payload)
    })
  }

  const calls = []
  for (const [method, ...args] of config.calls) {
    const ctx = await analytics[method](...args)
    calls.push({ method, messageId: ctx.event.messageId })
  }

  // A batch goes after its timeout: wait (bounded) until every call has been answered.
  const answered = () => {
    const done = new Set()
    for (const r of requests) if (r.status !== null) r.messages.forEach((m) => done.add(m.messageId))
    return calls.every((c) => done.has(c.messageId))
  }
  const deadline = Date.now() + 10000
  while (!answered() && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20))

  const [loaded] = await analytics
  const user = loaded.user()
  return { anonymousId: user.anonymousId(), userId: user.id(), calls, requests, refused, errors }
}

// Node's fetch keeps connections open: close them as a browser leaving the page does, not by a reset.
async function closeConnections() {
  const dispatcher = globalThis[Symbol.for('undici.globalDispatcher.1')]
  if (dispatcher) await dispatcher.close()
}

main().then(
  async (report) => {
    await closeConnections()
    process.stdout.write(JSON.stringify(report) + '\n', () => process.exit(0))
  },
  (error) => {
    process.stderr.write(`${error && error.stack ? error.stack : error}\n`)
    process.exit(1)
  },
)
