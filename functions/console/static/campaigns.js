// Campaigns: the list with each one's status, one campaign's form (segment, template, variants and their
// splits, holdout, conversion, rate, schedule), send and cancel, delete a draft, and its results: delivered
// and converted per arm against the holdout, and the uplift with its 95% interval, as charts with a table.
import { api } from './api.js'
import {
  BEHAVIOURS, act, actions, badge, collect, confirming, decode, encode, flash, form, go, history, input,
  listScreen, select, showFlash, submit, text, versionLine
} from './editing.js'
import { chart, h, loading, table, when } from './ui.js'

const STATUS_STATE = { draft: 'draft', scheduled: 'on', sending: 'on', sent: 'done', cancelled: 'paused' }
const NEW_CAMPAIGN = {
  name: '',
  channel: 'email',
  variants: [{ id: 'A', split: 100 }],
  holdout_percent: 10,
  conversion: { behaviour: 'purchase', days: 7 },
  send_rate_per_minute: 1000
}

function status (view) {
  return badge(view.status, STATUS_STATE[view.status] || 'draft')
}

async function list (main) {
  await loading(main, async () => {
    const { data } = await api('GET', '/admin/campaigns')
    return listScreen('Campaigns', { href: '#/campaigns/_new', label: 'New campaign' }, 'Campaigns', [
      { label: 'Campaign', value: v => h('a', { href: `#/campaigns/${encode(v.campaign.id)}` }, v.campaign.name || v.campaign.id) },
      { label: 'Segment', value: v => v.campaign.segment },
      { label: 'Template', value: v => v.campaign.template },
      { label: 'Status', value: status },
      { label: 'Holdout', value: v => `${v.campaign.holdout_percent}%` }
    ], data.campaigns, 'No campaigns yet.')
  })
  showFlash(main)
}

// --- the form ------------------------------------------------------------------------------------------

/** The variants: a row per variant (id, split, its own template), named variants.<n>.<field>. */
function variantsFieldset (variants, templateIds) {
  const error = h('p', { class: 'field-error', id: 'variants-error', hidden: true })
  const rows = h('div', { class: 'variant-rows' })
  const renumber = () => {
    [...rows.children].forEach((row, n) => {
      row.querySelector('legend').textContent = `Variant ${n + 1}`
      for (const control of row.querySelectorAll('[name]')) {
        control.name = control.name.replace(/^variants\.\d+\./, `variants.${n}.`)
        control.closest('.field').dataset.field = control.name
      }
      row.querySelector('.remove-variant').disabled = rows.children.length === 1
    })
  }
  const addRow = variant => {
    const n = rows.children.length
    const fields = [
      input('Variant id', `variants.${n}.id`, variant.id),
      input('Split (%)', `variants.${n}.split`, variant.split, { kind: 'int' }),
      select('Its own template', `variants.${n}.template`, variant.template, templateIds, { blank: 'the campaign’s template' })
    ]
    for (const wrapped of fields) {
      const control = wrapped.querySelector('[name]')
      control.setAttribute('aria-describedby', `${control.getAttribute('aria-describedby')} variants-error`)
    }
    const remove = h('button', { type: 'button', class: 'secondary remove-variant' }, 'Remove this variant')
    const row = h('fieldset', { class: 'variant' }, h('legend', {}), ...fields, remove)
    remove.addEventListener('click', () => {
      row.remove()
      renumber()
      rows.querySelector('input')?.focus()
    })
    rows.append(row)
    renumber()
  }
  variants.forEach(addRow)
  const add = h('button', { type: 'button', class: 'secondary' }, 'Add a variant')
  add.addEventListener('click', () => {
    addRow({ id: String.fromCharCode(65 + rows.children.length), split: '' })
    rows.lastElementChild.querySelector('input').focus()
  })
  // the variants' own field: an error naming "variants" (splits that do not add up to 100) shows here
  return h('fieldset', { class: 'field variants', 'data-field': 'variants' },
    h('legend', {}, 'Variants'),
    error,
    h('p', { class: 'hint' }, 'Splits of the treated contacts in whole percents, adding up to 100 (A/B tests: two or more).'),
    rows,
    h('div', { class: 'actions' }, add))
}

function campaignForm (campaign, isNew, segmentIds, templateIds, editable) {
  const element = form(
    isNew ? 'New campaign' : `Campaign ${campaign.id}`,
    async element => {
      const id = isNew ? element.elements.id.value.trim() : campaign.id
      const saved = await submit(element, {
        path: `/admin/campaigns/${encode(id || '-')}`,
        body: () => {
          if (!id) throw Object.assign(new Error('id: give the campaign an id'), { field: 'id' })
          return collect(element, campaign, ['variants'])
        },
        version: isNew ? 0 : campaign.version
      })
      if (saved) {
        flash(`Campaign ${saved.id} saved: version ${saved.version}.`)
        go(`#/campaigns/${encode(saved.id)}`)
      }
    }
  )
  const fields = h('fieldset', { class: 'plain', disabled: !editable },
    h('legend', { class: 'visually-hidden' }, 'The campaign'),
    isNew ? input('Campaign id', 'id', '', { hint: 'Lower-case letters, digits, ".", "_", ":" and "-".' }) : null,
    input('Name', 'name', campaign.name),
    text('Description', 'description', campaign.description, { rows: 2 }),
    select('Segment', 'segment', campaign.segment, segmentIds, { blank: 'Choose a segment', hint: 'Who it goes to (it must have members).' }),
    select('Channel', 'channel', campaign.channel, [['email', 'Email'], ['sms', 'SMS']]),
    select('Template', 'template', campaign.template, templateIds, { blank: 'Choose a template' }),
    variantsFieldset(campaign.variants || [{ id: 'A', split: 100 }], templateIds),
    input('Holdout (%)', 'holdout_percent', campaign.holdout_percent, {
      kind: 'float', hint: '0 to 50: this share of the segment is sent nothing, to measure the uplift against.'
    }),
    select('Conversion', 'conversion.behaviour', campaign.conversion?.behaviour, BEHAVIOURS, {
      hint: 'What counts as a conversion…'
    }),
    input('Within days', 'conversion.days', campaign.conversion?.days, { kind: 'int', hint: '…within this many days of being sent (1 to 365).' }),
    input('At most this many per minute', 'send_rate_per_minute', campaign.send_rate_per_minute, { kind: 'int' }),
    input('Send at', 'send_at', campaign.send_at, {
      hint: 'ISO time with a time zone, e.g. 2026-12-24T09:00:00Z; empty: when you send it.'
    }),
    editable ? actions(h('button', { type: 'submit' }, isNew ? 'Create campaign' : 'Save campaign')) : null
  )
  element.append(editable ? fields : h('div', {}, h('p', { class: 'hint' }, 'A campaign once sent cannot change.'), fields))
  return element
}

// --- results -------------------------------------------------------------------------------------------

const percent = value => (value === null || value === undefined ? '—' : `${value}%`)
const signed = value => `${value > 0 ? '+' : ''}${value}`

function armLabel (arm) {
  return arm.arm === 'treated' ? 'All treated' : arm.arm === 'holdout' ? 'Held out' : `Variant ${arm.arm}`
}

function resultsTable (arms) {
  return table('Results per arm', [
    { label: 'Arm', value: armLabel },
    { label: 'Assigned', value: a => String(a.counts.assigned) },
    { label: 'Sent', value: a => String(a.counts.sent) },
    { label: 'Delivered', value: a => String(a.counts.delivered) },
    { label: 'Opened', value: a => String(a.counts.opened) },
    { label: 'Clicked', value: a => String(a.counts.clicked) },
    { label: 'Converted', value: a => String(a.counts.converted) },
    { label: 'Conversion rate', value: a => percent(a.conversion_rate) },
    { label: 'Uplift (points)', value: a => (a.uplift ? signed(a.uplift.points) : '—') },
    { label: '95% interval', value: a => (a.uplift ? `${signed(a.uplift.low)} to ${signed(a.uplift.high)}` : '—') },
    { label: 'Significant', value: a => (a.uplift ? (a.uplift.significant ? 'yes' : 'no') : '—') }
  ], arms)
}

function results (report) {
  const arms = [...report.arms, ...(report.arms.length > 1 ? [report.treated] : []), ...(report.holdout ? [report.holdout] : [])]
  const labels = arms.map(armLabel)
  const treated = report.treated
  const held = report.holdout
  const summary = held
    ? `${treated.counts.delivered} delivered and ${treated.counts.converted} converted of ${treated.counts.assigned} treated; ` +
      `${held.counts.converted} converted of ${held.counts.assigned} held out.`
    : `${treated.counts.delivered} delivered and ${treated.counts.converted} converted of ${treated.counts.assigned} treated; nobody held out.`
  const counts = chart('Delivered and converted, per arm', {
    type: 'bar',
    data: {
      labels,
      datasets: [
        { label: 'Assigned', data: arms.map(a => a.counts.assigned), backgroundColor: '#9aa5b8' },
        { label: 'Delivered', data: arms.map(a => a.counts.delivered), backgroundColor: '#1f5fbf' },
        { label: 'Converted', data: arms.map(a => a.counts.converted), backgroundColor: '#1e7a43' }
      ]
    },
    options: { scales: { y: { beginAtZero: true, ticks: { precision: 0 } } } }
  }, summary, resultsTable(arms))
  const withUplift = arms.filter(a => a.uplift)
  const uplift = withUplift.length
    ? chart('Uplift against the holdout, with its 95% interval (points)', {
      type: 'bar',
      data: {
        labels: withUplift.map(armLabel),
        datasets: [
          { label: '95% interval', data: withUplift.map(a => [a.uplift.low, a.uplift.high]), backgroundColor: '#b9cdee', order: 1 },
          { type: 'line', label: 'Uplift', data: withUplift.map(a => a.uplift.points), showLine: false, pointRadius: 7, pointStyle: 'rectRot', order: 0, backgroundColor: '#1d2430', borderColor: '#1d2430' }
        ]
      },
      options: { scales: { y: { title: { display: true, text: 'points' } } } }
    }, withUplift.map(a => a.uplift.sentence).join(' '),
    table('Uplift per arm', [
      { label: 'Arm', value: armLabel },
      { label: 'Uplift (points)', value: a => signed(a.uplift.points) },
      { label: '95% interval', value: a => `${signed(a.uplift.low)} to ${signed(a.uplift.high)}` },
      { label: 'Significant', value: a => (a.uplift.significant ? 'yes' : 'no') }
    ], withUplift))
    : null
  return [
    h('ul', { class: 'result-sentences' }, report.summary.map(line => h('li', {}, line))),
    counts,
    uplift,
    h('p', { class: 'hint' }, `Conversion: ${report.conversion.behaviour} within ${report.conversion.days} days. ${report.method}.`)
  ]
}

async function resultsSection (campaign) {
  const body = h('div', { class: 'results' })
  const load = async () => {
    try {
      const { data } = await api('GET', `/admin/campaigns/${encode(campaign.id)}/results`)
      body.replaceChildren(...results(data.results).filter(Boolean))
    } catch (error) {
      body.replaceChildren(h('p', { class: 'form-error', role: 'alert' }, error.message))
    }
  }
  const refresh = h('button', { type: 'button', class: 'secondary' }, 'Refresh results')
  refresh.addEventListener('click', async () => {
    refresh.disabled = true
    await load()
    refresh.disabled = false
  })
  await load()
  return h('section', { 'aria-labelledby': 'campaign-results' },
    h('h2', { id: 'campaign-results' }, 'Results'), actions(refresh), body)
}

// --- the screen ----------------------------------------------------------------------------------------

function progress (view) {
  const state = view.state
  if (!state) return null
  return h('dl', { class: 'campaign-state' },
    h('dt', {}, 'Sends from'), h('dd', {}, when(state.send_at)),
    h('dt', {}, 'Contacts assigned'), h('dd', {}, String(state.planned)),
    h('dt', {}, 'Messages queued'), h('dd', {}, String(state.queued)),
    state.finished_at ? [h('dt', {}, 'Finished'), h('dd', {}, when(state.finished_at))] : null,
    state.cancelled_at ? [h('dt', {}, 'Cancelled'), h('dd', {}, when(state.cancelled_at))] : null)
}

async function detail (main, match) {
  const isNew = match[1] === '_new'
  await loading(main, async () => {
    const [{ data }, segments, templates] = await Promise.all([
      isNew
        ? { data: { campaign: NEW_CAMPAIGN, status: 'draft', state: null, history: [] } }
        : api('GET', `/admin/campaigns/${encode(decode(match[1]))}`),
      api('GET', '/admin/segments'),
      api('GET', '/admin/templates')
    ])
    const view = data
    const campaign = view.campaign
    const segmentIds = segments.data.segments.map(s => [s.id, s.name && s.name !== s.id ? `${s.name} (${s.id})` : s.id])
    const templateIds = templates.data.templates.map(t => t.id)
    const draft = view.status === 'draft'
    const editor = campaignForm(campaign, isNew, segmentIds, templateIds, draft)
    const controls = []
    const reload = (message) => {
      flash(message)
      go(`#/campaigns/${encode(campaign.id)}`)
    }
    if (!isNew && draft) {
      const moment = campaign.send_at ? `at ${when(campaign.send_at)}` : 'now'
      controls.push(confirming('Send campaign…', `Send “${campaign.name}” (version ${campaign.version}) to segment ${campaign.segment} ${moment}?`,
        'Send now', button => act(editor, button, async () => {
          const { data } = await api('POST', `/admin/campaigns/${encode(campaign.id)}/send`, { body: {}, version: campaign.version })
          return data
        }, sent => reload(`Campaign ${campaign.id} is ${sent.status}.`))))
      controls.push(confirming('Delete campaign', `Delete the draft ${campaign.id}?`, 'Delete', button => act(editor, button, async () => {
        const { data } = await api('DELETE', `/admin/campaigns/${encode(campaign.id)}`, { body: {}, version: campaign.version })
        return data
      }, deleted => {
        flash(`Campaign ${deleted.deleted} deleted.`)
        go('#/campaigns')
      }), { danger: true }))
    }
    if (view.status === 'scheduled' || view.status === 'sending') {
      controls.push(confirming('Cancel campaign…', `Stop campaign ${campaign.id}? Messages not yet sent are not sent.`,
        'Stop sending', button => act(editor, button, async () => {
          const { data } = await api('POST', `/admin/campaigns/${encode(campaign.id)}/cancel`, { body: {} })
          return data
        }, cancelled => reload(`Campaign ${campaign.id} is ${cancelled.status}.`)), { danger: true }))
    }
    return [
      h('p', { class: 'breadcrumb' }, h('a', { href: '#/campaigns' }, 'Campaigns')),
      h('h1', {}, isNew ? 'New campaign' : campaign.name || campaign.id),
      isNew ? null : h('div', { class: 'doc-meta' }, status(view), versionLine(campaign)),
      progress(view),
      controls.length ? actions(...controls) : null,
      isNew || draft ? null : await resultsSection(campaign),
      h('h2', {}, draft ? 'Edit' : 'The campaign as sent'),
      editor,
      history(view.history, [
        { label: 'Version', value: c => String(c.version) },
        { label: 'Name', value: c => c.name },
        { label: 'Saved', value: c => when(c.updated_at) }
      ])
    ].filter(Boolean)
  })
  showFlash(main)
}

export const nav = [{ href: '#/campaigns', label: 'Campaigns' }]
export const routes = [
  { pattern: /^\/campaigns$/, title: 'Campaigns', render: list },
  { pattern: /^\/campaigns\/([^/?]+)$/, title: 'Campaign', render: detail }
]
