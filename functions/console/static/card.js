// The contact card: the engagement gauge, scores over time, why the points, the stage history, events,
// automations, messages, consent, analytics, segments and tags, and the actions (accept a lead, tag,
// erase). Every part reads the admin API (GET /admin/contacts/{id} and its sub-resources).
import { api, ApiError } from './api.js'
import { gauge } from './gauge.js'
import { announce, chart, clearErrors, field, h, showError, table, when } from './ui.js'

/** A fresh Idempotency-Key for one click's change: a retry of that call is the same change. */
function once () {
  return { 'idempotency-key': crypto.randomUUID() }
}

/** The admin API's path for a contact (ids hold ":" and whatever a userId holds: encoded). */
export function contactPath (contactId, tail = '') {
  return `/admin/contacts/${encodeURIComponent(contactId)}${tail}`
}

/** The console's address of a contact's card. */
export function cardHref (contactId) {
  return `#/contacts/${encodeURIComponent(contactId)}`
}

/** A contact's name as people read it: traits name, or first and last name, else email, else the id. */
export function displayName (traits, fallback) {
  const t = traits || {}
  const first = t.firstName || t.first_name
  const last = t.lastName || t.last_name
  const name = t.name || [first, last].filter(Boolean).join(' ')
  return name || t.email || fallback
}

/** The admin API does not have this route (yet): the gateway's own 404, not the API's `not_found`. */
export function routeMissing (error) {
  return error instanceof ApiError && error.status === 404 && error.code === null
}

const number = value => (value === null || value === undefined ? '' : Number(value).toLocaleString(undefined, { maximumFractionDigits: 2 }))

function section (title, ...children) {
  const id = `card-${title.toLowerCase().replace(/[^a-z0-9]+/g, '-')}`
  return h('section', { class: 'card', 'aria-labelledby': id }, h('h2', { id }, title), ...children)
}

function facts (pairs) {
  return h(
    'dl',
    { class: 'card-facts' },
    pairs.filter(([, value]) => value !== null && value !== undefined && value !== '').map(([term, value]) => [
      h('dt', {}, term),
      h('dd', {}, value)
    ])
  )
}

/** A section filled by a call of its own: one failing (or missing) leaves the rest of the card. */
function later (title, load) {
  const body = h('div', {}, h('p', { class: 'loading' }, 'Loading…'))
  load().then(
    content => body.replaceChildren(...[content].flat()),
    error => body.replaceChildren(
      h('p', { class: 'empty' }, routeMissing(error) ? 'The admin API does not offer this yet.' : error.message)
    )
  )
  return section(title, body)
}

/** Render the card of `contactId` into `main`. */
export async function renderCard (main, contactId) {
  main.replaceChildren(h('p', { class: 'loading' }, 'Loading…'))
  let card
  try {
    card = (await api('GET', contactPath(contactId))).data
  } catch (error) {
    const gone = error instanceof ApiError && error.status === 404
    main.replaceChildren(
      h('h1', {}, gone ? 'No such contact' : 'The contact could not be read'),
      h('p', { class: gone ? 'empty' : 'form-error', role: 'alert' }, gone ? `There is no contact ${contactId}.` : error.message),
      h('p', {}, h('a', { href: '#/contacts' }, 'Search contacts'))
    )
    return
  }
  const redraw = () => renderCard(main, contactId)
  const name = displayName(card.traits, card.contact_id)
  main.replaceChildren(
    h('p', { class: 'crumbs' }, h('a', { href: '#/contacts' }, 'Contacts'), ' / ', card.contact_id),
    h('h1', {}, name, ' ', h('span', { class: 'badge' }, card.stage)),
    h(
      'div',
      { class: 'grid card-top' },
      section('Engagement', gauge(card.engagement), facts([
        ['Current engagement', `${number(card.engagement.current)} points`],
        ['Lifetime points', number(card.scores.global.lifetime)]
      ])),
      section('Contact', overview(card))
    ),
    actions(card, redraw),
    later('Scores over time', () => scoresChart(card)),
    section(`Why ${number(card.scores.global.lifetime)} points?`, ledger(card, contactId)),
    section('Stage history', timeline(card.stage_history)),
    section('Recent events', events(card, contactId)),
    later('Automations and timers', () => automations(card)),
    later('Messages sent or skipped', () => deliveries(card)),
    section('Consent', consent(card.consent)),
    section('RFM segment and churn risk', analytics(card)),
    later('Segments', () => segments(card)),
    later('Recommended products', () => recommended(card)),
    section('Traits', traits(card.traits))
  )
}

function overview (card) {
  return facts([
    ['Contact id', card.contact_id],
    ['User id', card.user_id],
    ['Email', card.traits?.email],
    ['Anonymous ids', card.anonymous_ids.join(', ')],
    ['Stage', card.stage],
    ['Salesperson', card.owner],
    ['Events', number(card.event_count)],
    ['First seen', when(card.first_seen_at)],
    ['Last seen', when(card.last_seen_at)],
    ['Revenue', number(card.revenue_total)],
    ['Last purchase', when(card.last_purchase_at)]
  ])
}

// --- actions ------------------------------------------------------------------------------------------

function actions (card, redraw) {
  return h(
    'section',
    { class: 'card', 'aria-labelledby': 'card-actions' },
    h('h2', { id: 'card-actions' }, 'Actions'),
    h('div', { class: 'grid' }, tags(card), acceptLead(card, redraw), erasure(card))
  )
}

function tags (card) {
  const list = h('ul', { class: 'tags', 'aria-label': 'Tags' })
  const show = names => {
    list.replaceChildren(
      ...(names.length
        ? names.map(tag => h(
          'li',
          { class: 'tag' },
          h('span', {}, tag),
          h('button', { type: 'button', class: 'secondary tag-remove', 'aria-label': `Remove tag ${tag}`, onclick: () => remove(tag) }, '×')
        ))
        : [h('li', { class: 'empty' }, 'No tags.')])
    )
  }
  const input = h('input', { name: 'tag', autocomplete: 'off', required: true, maxlength: 100 })
  const form = h(
    'form',
    { class: 'tag-form', 'aria-label': 'Add a tag' },
    field('New tag', input),
    h('button', { type: 'submit' }, 'Add tag')
  )
  async function remove (tag) {
    try {
      const { data } = await api('DELETE', contactPath(card.contact_id, `/tags/${encodeURIComponent(tag)}`), { headers: once() })
      show(data.tags)
      announce(`Tag ${tag} removed`)
      form.querySelector('input').focus()
    } catch (error) {
      showError(form, routeMissing(error) ? new Error('The admin API cannot remove tags yet.') : error)
    }
  }
  form.addEventListener('submit', async event => {
    event.preventDefault()
    clearErrors(form)
    const tag = input.value.trim()
    if (!tag) return showError(form, { field: 'tag', message: 'Write the tag to add.' })
    try {
      const { data } = await api('POST', contactPath(card.contact_id, '/tags'), { body: { tag }, headers: once() })
      show(data.tags)
      input.value = ''
      announce(`Tag ${tag} added`)
    } catch (error) {
      showError(form, routeMissing(error) ? new Error('The admin API cannot add tags yet.') : error)
    }
  })
  show(card.tags)
  return h('div', { class: 'action' }, h('h3', {}, 'Tags'), list, form)
}

function acceptLead (card, redraw) {
  const select = h('select', { name: 'salesperson' }, h('option', { value: '' }, 'Loading the sales team…'))
  const button = h('button', { type: 'submit' }, 'Accept lead')
  const form = h(
    'form',
    { class: 'accept-form', 'aria-label': 'Accept the lead' },
    h('p', { class: 'hint' }, card.owner ? `Routed to ${card.owner}.` : 'Not routed to a salesperson.'),
    field('Salesperson', select),
    button
  )
  api('GET', '/admin/salespeople').then(({ data }) => {
    const people = data.salespeople || []
    select.replaceChildren(
      ...(people.length ? [] : [h('option', { value: '' }, 'No salespeople')]),
      ...people.map(p => h('option', { value: p.id, selected: p.id === card.owner }, `${p.name} (${p.id})`))
    )
  }, error => {
    select.replaceChildren(h('option', { value: '' }, 'The sales team could not be read'))
    showError(form, error)
  })
  form.addEventListener('submit', async event => {
    event.preventDefault()
    clearErrors(form)
    if (!select.value) return showError(form, { field: 'salesperson', message: 'Choose the salesperson who accepts.' })
    try {
      const { data } = await api('POST', contactPath(card.contact_id, '/accept'), { body: { salesperson: select.value } })
      await redraw()
      document.getElementById('view').focus()  // the form is redrawn: the focus goes to the card
      announce(`Lead accepted: now ${data.stage}`)
    } catch (error) {
      showError(form, error)
    }
  })
  return h('div', { class: 'action' }, h('h3', {}, 'Accept the lead'), form)
}

function erasure (card) {
  const id = card.contact_id
  const confirm = h('button', { type: 'button', class: 'danger', 'data-action': 'confirm-erase' }, `Erase ${id} permanently`)
  const cancel = h('button', { type: 'button', class: 'secondary', 'data-action': 'cancel-erase' }, 'Cancel: keep the contact')
  const problem = h('p', { class: 'form-error', role: 'alert', hidden: true })
  const dialog = h(
    'dialog',
    { class: 'erase-dialog', 'aria-labelledby': 'erase-title', 'aria-describedby': 'erase-what' },
    h('h2', { id: 'erase-title' }, 'Erase this contact?'),
    h('p', { id: 'erase-what' }, `${id}, its events, scores, ledgers, automation runs, timers, stage history and ` +
      'send ledger, and every identity merged into it, are deleted. This cannot be undone.'),
    problem,
    h('div', { class: 'actions' }, cancel, confirm)
  )
  const open = h('button', { type: 'button', class: 'danger', 'aria-haspopup': 'dialog' }, 'Erase contact…')
  open.addEventListener('click', () => {
    problem.hidden = true
    dialog.showModal()
    cancel.focus()
  })
  cancel.addEventListener('click', () => dialog.close())
  let erased = false  // once erased the card is replaced: the focus goes to the result, not back to `open`
  dialog.addEventListener('close', () => !erased && open.isConnected && open.focus())
  confirm.addEventListener('click', async () => {
    confirm.disabled = true
    try {
      const { data } = await api('DELETE', contactPath(id))
      erased = true
      dialog.close()
      showErased(id, data)
    } catch (error) {
      problem.textContent = error.message
      problem.hidden = false
      confirm.disabled = false
    }
  })
  return h(
    'div',
    { class: 'action' },
    h('h3', {}, 'Erase the contact'),
    h('p', { class: 'hint' }, 'Deletes everything known about the contact (a right-to-erasure request).'),
    open,
    dialog
  )
}

async function showErased (id, result) {
  const main = document.getElementById('view')
  let gone = false
  try {
    await api('GET', contactPath(id))
  } catch (error) {
    gone = error instanceof ApiError && error.status === 404
  }
  const heading = h('h1', { tabindex: '-1' }, 'Contact erased')
  main.replaceChildren(
    heading,
    h(
      'p',
      { class: 'erased', role: 'status' },
      `${id} was erased: ${result.items} items and ${result.identities} identities deleted.`,
      gone ? ' The contact is gone.' : ' The contact can still be read; erase it again to finish.'
    ),
    result.complete ? null : h('p', {}, 'Something was left to erase: ask again.'),
    h('p', {}, h('a', { href: '#/contacts' }, 'Back to contacts'))
  )
  heading.focus()  // the card (and the focused control in it) is gone: the focus goes to what replaced it
  announce(`${id} erased`)
}

// --- scores, ledger, history, events ------------------------------------------------------------------

async function scoresChart (card) {
  const { data } = await api('GET', contactPath(card.contact_id, '/scores'), { query: { days: 90 } })
  const points = data.points || []
  if (!points.length) return h('p', { class: 'empty' }, 'No scores in the last 90 days.')
  const tagNames = [...new Set(points.flatMap(p => Object.keys(p.tags || {})))].sort()
  const series = [
    { label: 'Global', value: p => p.global, color: '#1f5fbf' },
    { label: 'Stage (since entering it)', value: p => p.stage, color: '#1e7a43' },
    ...tagNames.map((tag, i) => ({
      label: `Tag ${tag}`,
      value: p => p.tags?.[tag] ?? null,
      color: ['#b3261e', '#8a5a00', '#6b3fa0', '#00707a'][i % 4]
    }))
  ]
  const config = {
    type: 'line',
    data: {
      datasets: series.map(s => ({
        label: s.label,
        data: points.map(p => ({ x: Date.parse(p.at), y: s.value(p) })),
        borderColor: s.color,
        backgroundColor: s.color,
        pointRadius: 2,
        stepped: false
      }))
    },
    options: {
      scales: {
        x: { type: 'linear', min: Date.parse(points[0].at), max: Date.parse(points[points.length - 1].at), ticks: { maxTicksLimit: 6, callback: value => new Date(value).toLocaleDateString() } },
        y: { beginAtZero: true, title: { display: true, text: 'points (decayed)' } }
      },
      plugins: { tooltip: { callbacks: { title: items => new Date(items[0].parsed.x).toLocaleString() } } }
    }
  }
  const first = points[0]
  const last = points[points.length - 1]
  const summary = `Over the last ${data.days} days the global score went from ${number(first.global)} to ` +
    `${number(last.global)} points (${points.length} points in time)` +
    (tagNames.length ? `; tags: ${tagNames.map(t => `${t} ${number(last.tags?.[t] ?? 0)}`).join(', ')}.` : '.')
  const figures = table(
    'Scores over time',
    [{ label: 'When', value: p => when(p.at) }, ...series.map(s => ({ label: s.label, value: p => number(s.value(p)) }))],
    points
  )
  return chart('Scores over time', config, summary, figures)
}

function ledgerEntry (entry) {
  const total = entry.changes.filter(c => c.dimension === 'global').reduce((sum, c) => sum + c.points, 0)
  return h(
    'li',
    {},
    h('strong', {}, `${total >= 0 ? '+' : ''}${total} `), entry.event || entry.behaviour,
    ' ', h('span', { class: 'hint' }, when(entry.timestamp)),
    h('ul', { class: 'rule-lines' }, entry.changes.map(c => h(
      'li',
      {},
      `${c.points >= 0 ? '+' : ''}${c.points} ${c.dimension} by rule `,
      h('a', { href: `#/rules/${encodeURIComponent(c.rule_id)}` }, c.rule_id),
      ` (version ${c.rule_version})`
    )))
  )
}

/** `shown` with a "show older" button that reads the next page through `more(cursor)` into `target`. */
function paged (shown, target, cursor, more, label) {
  const button = h('button', { type: 'button', class: 'secondary' }, label)
  const wrap = h('div', {}, shown, cursor ? button : null)
  let next = cursor
  button.addEventListener('click', async () => {
    button.disabled = true
    try {
      const { items, cursor: after } = await more(next)
      target.append(...items)
      next = after
      if (!next) button.remove()
    } catch (error) {
      button.after(h('p', { class: 'form-error', role: 'alert' }, error.message))
    }
    button.disabled = false
  })
  return wrap
}

function ledger (card, contactId) {
  if (!card.ledger.length) return h('p', { class: 'empty' }, 'No scored events yet.')
  const list = h('ol', { class: 'ledger' }, card.ledger.map(ledgerEntry))
  return [
    h('p', { class: 'hint' }, 'Each scored event, newest first, with the rule lines that gave its points.'),
    paged(list, list, card.next_ledger_cursor, async before => {
      const { data } = await api('GET', contactPath(contactId, '/ledger'), { query: { before } })
      return { items: data.entries.map(ledgerEntry), cursor: data.next_cursor }
    }, 'Show older scored events')
  ]
}

function happening (item) {
  switch (item.type) {
    case 'ContactStageChanged':
      return [`Stage ${item.from ?? 'none'} → ${item.to}`, item.reason]
    case 'EngagementQuarterChanged':
      return [`Quarter ${item.from ?? 'none'} → ${item.to}`, item.direction ? `engagement ${item.direction}` : '']
    case 'LeadRouted':
      return [`Lead routed to ${item.salesperson_name || item.salesperson_id}`, item.reason]
    case 'ContactRemoved':
      return [`Removed from stage ${item.stage}`, item.reason]
    case 'SegmentChanged':
      return [`Segment ${item.segment} ${item.change}`, '']
    case 'ChurnRiskChanged':
      return [`Churn risk ${item.from ?? 'none'} → ${item.to}`, '']
    default:
      return [item.type || 'Change', '']
  }
}

function timeline (history) {
  if (!history.length) return h('p', { class: 'empty' }, 'No stage moves yet.')
  return h('ol', { class: 'timeline', 'aria-label': 'Stage history, newest first' }, history.map(item => {
    const [what, why] = happening(item)
    return h(
      'li',
      { class: `timeline-${(item.type || '').toLowerCase()}` },
      h('time', { datetime: item.at }, when(item.at)),
      h('span', { class: 'timeline-what' }, what),
      why ? h('span', { class: 'hint' }, why) : null
    )
  }))
}

const EVENT_COLUMNS = [
  { label: 'When', value: e => when(e.timestamp) },
  { label: 'Call', value: e => e.type },
  { label: 'Event', value: e => e.event || e.behaviour },
  { label: 'Behaviour', value: e => e.behaviour },
  { label: 'Trust', value: e => e.trust }
]

function events (card, contactId) {
  const shown = table('Recent events, newest first', EVENT_COLUMNS, card.recent_events, 'No events yet.')
  const body = shown.querySelector('tbody')
  if (!body) return shown
  return paged(shown, body, card.next_events_cursor, async before => {
    const { data } = await api('GET', contactPath(contactId, '/events'), { query: { before } })
    const rows = data.events.map(e => h('tr', {}, EVENT_COLUMNS.map(c => h('td', {}, c.value(e)))))
    return { items: rows, cursor: data.next_cursor }
  }, 'Show older events')
}

// --- automations, deliveries, consent, analytics, segments, traits ------------------------------------

async function automations (card) {
  const { data } = await api('GET', contactPath(card.contact_id, '/automations'))
  return [
    table('Automations fired, newest first', [
      { label: 'When', value: r => when(r.at) },
      { label: 'Automation', value: r => h('a', { href: `#/automations/${encodeURIComponent(r.automation)}` }, r.automation) },
      { label: 'Step', value: r => r.step },
      { label: 'Result', value: r => `${r.run_status}${r.status === 'pending' ? ' (pending)' : ''}` },
      { label: 'Messages', value: r => (r.requests || []).map(q => `${q.channel}: ${q.subject || q.text || ''} (${q.status})`).join('; ') },
      { label: 'Notes', value: r => (r.notes || []).join('; ') }
    ], data.runs, 'No automation has run for this contact.'),
    table('Timers armed, soonest first', [
      { label: 'Due', value: t => when(t.due) },
      { label: 'Automation', value: t => t.automation },
      { label: 'Kind', value: t => t.kind },
      { label: 'Occurrence', value: t => t.n }
    ], data.timers, 'No timers armed.')
  ]
}

async function deliveries (card) {
  const { data } = await api('GET', contactPath(card.contact_id, '/deliveries'))
  return table('Messages, newest change first', [
    { label: 'When', value: d => when(d.sent_at || d.at) },
    { label: 'Automation', value: d => d.automation },
    { label: 'Channel', value: d => d.channel },
    { label: 'Status', value: d => d.status },
    { label: 'Why', value: d => d.reason || '' },
    { label: 'Attempts', value: d => d.attempts }
  ], data.deliveries, 'No messages yet.')
}

function consent (channels) {
  const entries = Object.entries(channels || {})
  if (!entries.length) return h('p', { class: 'empty' }, 'No consent recorded.')
  return table('Consent to marketing, per channel', [
    { label: 'Channel', value: ([channel]) => channel },
    { label: 'State', value: ([, c]) => c.state },
    { label: 'Granted', value: ([, c]) => (c.granted ? `${when(c.granted.at)} (${c.granted.source})` : '') },
    { label: 'Revoked', value: ([, c]) => (c.revoked ? `${when(c.revoked.at)} (${c.revoked.source})` : '') },
    { label: 'Confirmed', value: ([, c]) => when(c.confirmed_at) }
  ], entries)
}

function analytics (card) {
  const a = card.analytics
  if (!a) return h('p', { class: 'empty' }, 'The nightly analytics have not scored this contact yet.')
  return [
    facts([
      ['As of', a.day],
      ['RFM segment', a.segment_name ? `${a.segment_name}${a.premium ? ' (premium)' : ''}` : null],
      ['Recency, frequency, monetary', a.r !== null && a.r !== undefined ? `${a.r}, ${a.f}, ${a.m}` : null],
      ['Churn risk', a.risk_level ? `${a.risk_level} (${number(a.churn_risk)})` : null],
      ['No purchase within the horizon', a.p_no_purchase !== null && a.p_no_purchase !== undefined
        ? `${Math.round(a.p_no_purchase * 100)}% within ${a.horizon_days} days` : null],
      ['Expected next purchase', a.expected_next_purchase],
      ['Typical gap between purchases', a.typical_gap_days ? `${number(a.typical_gap_days)} days` : null]
    ]),
    card.analytics_history.length ? timeline(card.analytics_history) : null
  ]
}

async function segments (card) {
  if (!card.segments.length) return h('p', { class: 'empty' }, 'The contact is in no segment.')
  let names = {}
  try {
    const { data } = await api('GET', '/admin/segments')
    names = Object.fromEntries((data.segments || []).map(s => [s.id, s.name]))
  } catch {
    // the ids alone still say it
  }
  return h('ul', { class: 'segments' }, card.segments.map(id => h(
    'li',
    {},
    h('a', { href: `#/contacts?segment=${encodeURIComponent(id)}` }, names[id] ? `${names[id]} (${id})` : id)
  )))
}

function traits (values) {
  const entries = Object.entries(values || {})
  if (!entries.length) return h('p', { class: 'empty' }, 'No traits.')
  return facts(entries.map(([name, value]) => [name, typeof value === 'object' ? JSON.stringify(value) : String(value)]))
}

// --- issue 15: recommended products ----------------------------------------------------------------------

//: how many the card shows
const RECOMMENDED = 6

/** The products recommended to the contact (not bought, from its recent purchases and views, else the
 * best-sellers), with why: the products of its own they are bought with, or their popularity. */
async function recommended (card) {
  const { data } = await api('GET', contactPath(card.contact_id, '/recommendations'), { query: { n: RECOMMENDED } })
  const products = data.recommendations || []
  const why = p => p.reason === 'similar' ? `Bought with ${p.because.join(', ')}` : 'Popular'
  return table('Recommended products', [
    { label: 'Product', value: p => p.url ? h('a', { href: p.url, rel: 'noopener noreferrer', target: '_blank' }, p.name || p.product_id) : (p.name || p.product_id) },
    { label: 'Id', value: p => h('a', { href: `#/catalog/${encodeURIComponent(p.product_id)}` }, p.product_id) },
    { label: 'Category', value: p => p.category || '' },
    { label: 'Price', value: p => number(p.price) },
    { label: 'Why', value: why }
  ], products, 'Nothing to recommend yet: the nightly model has not run, or every product is out of stock or excluded.')
}
