// The console: one page, screens chosen by the address's hash (#/contacts/...), each from its module.
import { loadConfig } from './api.js'
import { ensureSignedIn } from './auth.js'
import { h } from './ui.js'
import * as contacts from './contacts.js'
import * as sales from './sales.js'
import * as documents from './documents.js'
import * as reports from './reports.js'

//: Each module exports `nav` ([{ href, label }]) and `routes` ([{ pattern, title, render(main, match) }]).
const MODULES = [contacts, sales, documents, reports]
const ROUTES = MODULES.flatMap(m => m.routes)

/** The address's hash when it names a screen ('#/...'; none or '#' is home), else null: a bare anchor
 * ('#view', what the skip link's address says) names a place on the page, not a screen. */
function screenHash () {
  const hash = window.location.hash
  if (hash === '' || hash === '#') return '#/'
  return hash.startsWith('#/') ? hash : null
}

/** The first segment of a hash's path: '#/contacts/user_id:ann?x' -> 'contacts'; '#/' -> '' (home). */
function section (hash) {
  return (hash || '#/').replace(/^#\/?/, '').split(/[/?]/, 1)[0]
}

//: the screen '#/' shows (the contacts screen), whose item is current there
const HOME = 'contacts'

function renderNav () {
  const here = section(screenHash()) || HOME
  const items = MODULES.flatMap(m => m.nav).map(item =>
    h('li', {}, h('a', { href: item.href, 'aria-current': section(item.href) === here ? 'page' : null }, item.label))
  )
  document.getElementById('nav').replaceChildren(...items)
}

/** Render the screen of the address's hash. `moved`: the user went there (from another screen, or by an
 * address naming a screen, as a link to an anchor does), so focus moves to it for screen readers and the
 * keyboard; the bare page (no hash) starts at the top, where the skip link is the first stop. */
async function show (moved = false) {
  const path = (screenHash() || '#/').slice(1) || '/'
  const main = document.getElementById('view')
  renderNav()
  for (const route of ROUTES) {
    const match = path.match(route.pattern)
    if (match) {
      document.title = `${route.title} · Lifecycle`
      await route.render(main, match)
      if (moved) main.focus({ preventScroll: true })
      return
    }
  }
  document.title = 'Not found · Lifecycle'
  main.replaceChildren(h('h1', {}, 'Not found'), h('p', {}, h('a', { href: '#/' }, 'Back to contacts')))
}

async function start () {
  const config = await loadConfig()
  if (!(await ensureSignedIn(config))) return
  // an anchor's hash ('#view') keeps the screen shown: only a screen's hash ('#/...') changes it
  window.addEventListener('hashchange', () => screenHash() && show(true))
  const hash = screenHash()
  await show(hash !== null && hash !== '#/')
}

// The skip link moves the focus to the screen without touching the address (whose hash is the router's).
document.querySelector('a.skip').addEventListener('click', event => {
  event.preventDefault()
  document.getElementById('view').focus()
})

start()
