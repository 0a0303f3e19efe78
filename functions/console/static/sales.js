// The sales view: a salesperson's leads, hottest first, to accept.
import { api } from './api.js'
import { cardHref, contactPath, routeMissing } from './card.js'
import { announce, field, h, loading, table, when } from './ui.js'

export const nav = [{ href: '#/sales', label: 'Sales' }]
export const routes = [
  { pattern: /^\/sales\/?$/, title: 'Sales', render: main => renderTeam(main) },
  { pattern: /^\/sales\/([^?/]+)$/, title: 'Leads', render: (main, match) => renderLeads(main, decodeURIComponent(match[1])) }
]

const LEADS = 50

/** `#/sales`: pick a salesperson. */
async function renderTeam (main) {
  await loading(main, async () => {
    const { data } = await api('GET', '/admin/salespeople')
    const people = data.salespeople || []
    if (!people.length) {
      return [h('h1', {}, 'Sales'), h('p', { class: 'empty' }, 'No salespeople yet (PUT /admin/salespeople/{id}).')]
    }
    const select = h('select', { name: 'salesperson' }, people.map(p => h('option', { value: p.id }, `${p.name} (${p.id})`)))
    const form = h(
      'form',
      { class: 'card', 'aria-label': 'Choose a salesperson' },
      field('Salesperson', select),
      h('button', { type: 'submit' }, 'Show leads')
    )
    form.addEventListener('submit', event => {
      event.preventDefault()
      window.location.hash = `#/sales/${encodeURIComponent(select.value)}`
    })
    return [
      h('h1', {}, 'Sales'),
      form,
      h('h2', {}, 'The sales team'),
      h('ul', { class: 'team' }, people.map(p => h(
        'li',
        {},
        h('a', { href: `#/sales/${encodeURIComponent(p.id)}` }, `${p.name}`),
        ` ${p.email}`,
        p.available === false ? h('span', { class: 'badge' }, 'away') : null
      )))
    ]
  })
}

/** `#/sales/<id>`: the leads routed to them, hottest first, each with Accept (accepted ones marked). */
async function renderLeads (main, salespersonId) {
  await loading(main, async () => {
    let leads
    try {
      leads = (await api('GET', `/admin/salespeople/${encodeURIComponent(salespersonId)}/leads`, { query: { limit: LEADS } })).data.leads
    } catch (error) {
      if (routeMissing(error)) {
        return [h('h1', {}, `Leads of ${salespersonId}`), h('p', { class: 'empty' }, 'The admin API does not list leads yet.')]
      }
      throw error
    }
    const person = await api('GET', '/admin/salespeople').then(
      ({ data }) => (data.salespeople || []).find(p => p.id === salespersonId),
      () => null
    )
    return [
      h('p', { class: 'crumbs' }, h('a', { href: '#/sales' }, 'Sales'), ' / ', salespersonId),
      h('h1', {}, `Leads of ${salespersonId}`),
      person ? h('p', {}, `${person.name}, ${person.email}${person.available === false ? ' (away: no new leads)' : ''}`) : null,
      h('p', { class: 'hint' }, 'Hottest first: the current (decayed) engagement score.'),
      table(`Leads routed to ${salespersonId}, hottest first`, [
        { label: 'Contact', value: lead => h('a', { href: cardHref(lead.contact_id) }, lead.name || lead.email || lead.contact_id) },
        { label: 'Email', value: lead => lead.email || '' },
        { label: 'Score', value: lead => Number(lead.score).toLocaleString(undefined, { maximumFractionDigits: 1 }) },
        { label: 'Quarter', value: lead => lead.quarter },
        { label: 'Stage', value: lead => lead.stage },
        { label: 'Routed', value: lead => when(lead.routed_at) },
        { label: 'Accepted', value: lead => acceptCell(lead, salespersonId) }
      ], leads, 'No leads routed to this salesperson.')
    ]
  })
}

function accepted () {
  return h('span', { class: 'badge accepted' }, '✓ Accepted')
}

function acceptCell (lead, salespersonId) {
  if (lead.accepted) return accepted()
  const label = lead.name || lead.email || lead.contact_id
  const button = h('button', { type: 'button', 'aria-label': `Accept ${label}` }, 'Accept')
  const cell = h('div', { class: 'accept-cell' }, button)
  button.addEventListener('click', async () => {
    button.disabled = true
    try {
      const { data } = await api('POST', contactPath(lead.contact_id, '/accept'), { body: { salesperson: salespersonId } })
      const mark = accepted()
      mark.setAttribute('tabindex', '-1')
      cell.replaceChildren(mark, h('span', { class: 'hint' }, ` now ${data.stage}`))
      mark.focus()
      announce(`${label} accepted: now ${data.stage}`)
    } catch (error) {
      button.disabled = false
      cell.querySelector('.form-error')?.remove()
      cell.append(h('p', { class: 'form-error', role: 'alert' }, error.message))
    }
  })
  return cell
}
