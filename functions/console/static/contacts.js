// Contacts: search by id, email or name, open a contact by id, browse a segment's members, and the card.
import { api, ApiError } from './api.js'
import { cardHref, renderCard, routeMissing } from './card.js'
import { clearErrors, field, h, showError } from './ui.js'

export const nav = [{ href: '#/contacts', label: 'Contacts' }]
export const routes = [
  { pattern: /^\/(?:\?(.*))?$/, title: 'Contacts', render: (main, match) => renderSearch(main, match[1]) },
  { pattern: /^\/contacts\/?(?:\?(.*))?$/, title: 'Contacts', render: (main, match) => renderSearch(main, match[1]) },
  { pattern: /^\/contacts\/([^?/]+)$/, title: 'Contact', render: (main, match) => renderCard(main, decodeURIComponent(match[1])) }
]

const PAGE = 20
const MEMBERS_PAGE = 50

/** The contacts screen: `#/contacts?q=<text>` searches, `#/contacts?segment=<id>` lists members. */
async function renderSearch (main, queryString) {
  const query = new URLSearchParams(queryString || '')
  const q = query.get('q') || ''
  const segment = query.get('segment') || ''
  const results = h('div', { class: 'results', 'aria-live': 'polite' })
  main.replaceChildren(
    h('h1', {}, 'Contacts'),
    h('div', { class: 'grid' }, searchForm(q, results), openForm(), segmentForm(segment)),
    results
  )
  if (q) await search(main.querySelector('form.search-form'), q, results)
  else if (segment) await members(segment, results)
}

function searchForm (q, results) {
  const input = h('input', { type: 'search', name: 'q', value: q, autocomplete: 'off', minlength: 2, required: true })
  const form = h(
    'form',
    { class: 'card search-form', role: 'search', 'aria-label': 'Search contacts' },
    h('h2', {}, 'Search'),
    field('Id, email or name', input, 'At least 2 characters: the start of an email or of a name, or a whole id.'),
    h('button', { type: 'submit' }, 'Search')
  )
  form.addEventListener('submit', event => {
    event.preventDefault()
    const text = input.value.trim()
    const target = `#/contacts?q=${encodeURIComponent(text)}`
    if (window.location.hash === target) search(form, text, results)
    else window.location.hash = target
  })
  return form
}

async function search (form, q, results) {
  clearErrors(form)
  results.replaceChildren(h('p', { class: 'loading' }, 'Searching…'))
  const list = h('ul', { class: 'contact-list' })
  const more = h('button', { type: 'button', class: 'secondary' }, 'More results')
  const load = async cursor => {
    const { data } = await api('GET', '/admin/contacts', { query: { q, limit: PAGE, cursor } })
    list.append(...data.contacts.map(contactItem))
    more.hidden = !data.next_cursor
    more.onclick = () => load(data.next_cursor).catch(error => results.append(problem(error)))
    return data.contacts.length
  }
  try {
    const found = await load(null)
    results.replaceChildren(
      h('h2', { id: 'results-title' }, `Contacts matching “${q}”`),
      found ? list : h('p', { class: 'empty' }, 'No contact matches.'),
      more
    )
    list.setAttribute('aria-labelledby', 'results-title')
  } catch (error) {
    results.replaceChildren()
    if (error instanceof ApiError && error.field) showError(form, error)
    else results.replaceChildren(problem(error, 'Search is not available from this admin API yet.'))
  }
}

function contactItem (contact) {
  const name = contact.name || contact.email || contact.contact_id
  return h(
    'li',
    {},
    h('a', { href: cardHref(contact.contact_id) }, name),
    ' ',
    contact.email && contact.email !== name ? h('span', {}, contact.email, ' ') : null,
    h('span', { class: 'hint' }, contact.contact_id),
    contact.stage ? [' ', h('span', { class: 'badge' }, contact.stage)] : null
  )
}

function problem (error, missing) {
  const message = routeMissing(error) && missing ? missing : error.message
  return h('p', { class: 'form-error', role: 'alert' }, message)
}

function openForm () {
  const input = h('input', { name: 'contact_id', autocomplete: 'off', required: true, spellcheck: 'false' })
  const form = h(
    'form',
    { class: 'card open-form', 'aria-label': 'Open a contact by id' },
    h('h2', {}, 'Open by id'),
    field('Contact id or user id', input, 'user_id:…, anonymous_id:…, or a userId as your site sends it.'),
    h('button', { type: 'submit' }, 'Open')
  )
  form.addEventListener('submit', event => {
    event.preventDefault()
    const id = input.value.trim()
    if (!id) return showError(form, { field: 'contact_id', message: 'Write the id of the contact to open.' })
    window.location.hash = cardHref(id)
  })
  return form
}

function segmentForm (chosen) {
  const select = h('select', { name: 'segment' }, h('option', { value: '' }, 'Loading segments…'))
  const form = h(
    'form',
    { class: 'card segment-form', 'aria-label': 'Browse a segment' },
    h('h2', {}, 'Browse a segment'),
    field('Segment', select),
    h('button', { type: 'submit' }, 'Show members')
  )
  api('GET', '/admin/segments').then(({ data }) => {
    const segments = data.segments || []
    select.replaceChildren(
      h('option', { value: '' }, segments.length ? 'Choose a segment' : 'No segments yet'),
      ...segments.map(s => h('option', { value: s.id, selected: s.id === chosen }, `${s.name} (${s.id})${s.paused ? ', paused' : ''}`))
    )
  }, error => showError(form, error))
  form.addEventListener('submit', event => {
    event.preventDefault()
    if (!select.value) return showError(form, { field: 'segment', message: 'Choose a segment.' })
    window.location.hash = `#/contacts?segment=${encodeURIComponent(select.value)}`
  })
  return form
}

async function members (segment, results) {
  results.replaceChildren(h('p', { class: 'loading' }, 'Loading members…'))
  const list = h('ul', { class: 'contact-list', 'aria-labelledby': 'members-title' })
  const more = h('button', { type: 'button', class: 'secondary' }, 'More members')
  const load = async after => {
    const { data } = await api('GET', `/admin/segments/${encodeURIComponent(segment)}/members`, { query: { after, limit: MEMBERS_PAGE } })
    list.append(...data.members.map(id => h('li', {}, h('a', { href: cardHref(id) }, id))))
    more.hidden = !data.after
    more.onclick = () => load(data.after).catch(error => results.append(problem(error)))
    return data.members.length
  }
  try {
    const found = await load(null)
    results.replaceChildren(
      h('h2', { id: 'members-title' }, `Members of segment ${segment}`),
      found ? list : h('p', { class: 'empty' }, 'The segment has no members.'),
      more
    )
  } catch (error) {
    results.replaceChildren(problem(error))
  }
}
