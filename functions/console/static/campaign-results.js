// Campaign and automation results: each arm's counts and conversion, and the uplift over the contacts held
// out with its 95% interval (the admin API's /results). Charts with their figures in a table beside them.
import { api } from './api.js'
import { h, table, chart } from './ui.js'
import { colour, count, orDash, points, rate } from './report-format.js'

/** An arm as people read it: a campaign's variants, the contacts held out, all treated together. */
export function armLabel (arm) {
  if (arm === 'holdout' || arm === 'held_out') return 'Held out'
  if (arm === 'treated') return 'All treated'
  if (arm === 'acted') return 'Acted on'
  return `Variant ${arm}`
}

/** An uplift as a phrase: "+12.50 points (95% CI −3.10 to +28.10), not significant". */
export function upliftText (uplift) {
  if (!uplift) return '–'
  const verdict = uplift.significant ? 'significant' : 'not significant'
  return `${points(uplift.points)} points (95% CI ${points(uplift.low)} to ${points(uplift.high)}), ${verdict}`
}

/** The list: campaigns (each with its overall uplift when it has a holdout and was sent), then automations
 * with a holdout. */
export async function campaignList () {
  const [{ data: campaigns }, { data: automations }] = await Promise.all([
    api('GET', '/admin/campaigns'),
    api('GET', '/admin/automations')
  ])
  const held = automations.automations.filter(a => a.holdout_percent > 0)
  const measured = view => view.campaign.holdout_percent > 0 && ['sending', 'sent'].includes(view.status)
  const [campaignUplifts, automationUplifts] = await Promise.all([
    Promise.all(campaigns.campaigns.map(view => measured(view)
      ? api('GET', `/admin/campaigns/${encodeURIComponent(view.campaign.id)}/results`)
        .then(r => r.data.results.treated.uplift).catch(() => null)
      : null)),
    Promise.all(held.map(a => api('GET', `/admin/automations/${encodeURIComponent(a.id)}/results`)
      .then(r => r.data.results.treated.uplift).catch(() => null)))
  ])
  const campaignRows = campaigns.campaigns.map((view, n) => ({ ...view, uplift: campaignUplifts[n] }))
  const automationRows = held.map((automation, n) => ({ automation, uplift: automationUplifts[n] }))
  return [
    h('h2', { id: 'campaigns-heading' }, 'Campaigns'),
    table(
      'Campaigns and their uplift over the contacts held out',
      [
        {
          label: 'Campaign',
          value: r => h('a', { href: `#/reports/campaigns/${encodeURIComponent(r.campaign.id)}` }, r.campaign.name)
        },
        { label: 'Status', value: r => r.status },
        { label: 'Segment', value: r => r.campaign.segment },
        { label: 'Held out', value: r => (r.campaign.holdout_percent ? `${r.campaign.holdout_percent}%` : 'none') },
        { label: 'Uplift (all treated)', value: r => upliftCell(r.uplift, r.campaign.holdout_percent) }
      ],
      campaignRows,
      'No campaigns yet.'
    ),
    h('h2', { id: 'automations-heading' }, 'Automations with a holdout'),
    table(
      'Automations with a holdout and their uplift',
      [
        {
          label: 'Automation',
          value: r => h('a', { href: `#/reports/automations/${encodeURIComponent(r.automation.id)}` }, r.automation.name)
        },
        { label: 'Paused', value: r => (r.automation.paused ? 'yes' : 'no') },
        { label: 'Held out', value: r => `${r.automation.holdout_percent}%` },
        { label: 'Uplift', value: r => upliftCell(r.uplift, r.automation.holdout_percent) }
      ],
      automationRows,
      'No automation holds contacts out (give one a holdout share to measure its uplift).'
    )
  ]
}

function upliftCell (uplift, holdoutPercent) {
  if (!holdoutPercent) return 'no holdout'
  return uplift ? upliftText(uplift) : 'not measured yet'
}

/** One campaign's (kind "campaigns") or automation's ("automations") results. */
export async function resultsView (kind, id) {
  const path = `/admin/${kind}/${encodeURIComponent(id)}`
  if (kind === 'campaigns') {
    const { data } = await api('GET', `${path}/results`)
    const c = data.campaign
    return resultsContent(c.name, [
      ['Status', data.status],
      ['Segment', c.segment],
      ['Channel', c.channel],
      ['Held out', c.holdout_percent ? `${c.holdout_percent}%` : 'none'],
      ['Variants', c.variants.map(v => `${v.id} (${v.split}%)`).join(', ')]
    ], data.results)
  }
  const [{ data }, named] = await Promise.all([
    api('GET', `${path}/results`),
    api('GET', path).then(r => r.data.automation.name).catch(() => null)
  ])
  return resultsContent(named || data.automation, [
    ['Automation', data.automation],
    ['Held out', data.holdout_percent ? `${data.holdout_percent}%` : 'none']
  ], data.results)
}

function resultsContent (name, facts, results) {
  const conversion = results.conversion
  const arms = [...results.arms, ...(results.holdout ? [results.holdout] : [])]
  const measured = [...results.arms, ...(results.arms.length > 1 ? [results.treated] : [])].filter(a => a.uplift)
  const figures = table(
    `${name}: counts, conversion and uplift by arm`,
    [
      { label: 'Arm', value: r => armLabel(r.arm) },
      { label: 'Assigned', value: r => count(r.counts.assigned) },
      { label: 'Sent', value: r => count(r.counts.sent) },
      { label: 'Delivered', value: r => count(r.counts.delivered) },
      { label: 'Opened', value: r => count(r.counts.opened) },
      { label: 'Clicked', value: r => count(r.counts.clicked) },
      { label: 'Unsubscribed', value: r => count(r.counts.unsubscribed) },
      { label: 'Converted', value: r => count(r.counts.converted) },
      { label: 'Conversion', value: r => rate(r.conversion_rate) },
      { label: 'Uplift (points)', value: r => (r.uplift ? points(r.uplift.points) : '–') },
      { label: '95% interval', value: r => (r.uplift ? `${points(r.uplift.low)} to ${points(r.uplift.high)}` : '–') },
      { label: 'Significant', value: r => (r.uplift ? (r.uplift.significant ? 'yes' : 'no') : '–') }
    ],
    [...arms, ...(results.arms.length > 1 ? [results.treated] : [])]
  )
  const content = [
    h('h1', {}, `Results: ${name}`),
    h('p', {}, h('a', { href: '#/reports/campaigns' }, 'All campaign results')),
    h('dl', { class: 'facts' }, facts.flatMap(([term, value]) => [h('dt', {}, term), h('dd', {}, orDash(value))])),
    h('p', { class: 'hint' },
      `A conversion: ${conversion.behaviour.replaceAll('_', ' ')} within ${conversion.days} days of being assigned an arm; ` +
      `rates are over everyone assigned (${results.method}).`),
    h('h2', {}, 'Summary'),
    h('ul', { class: 'uplift-summary' }, results.summary.map(s => h('li', {}, s))),
    chart(
      'Conversion by arm',
      {
        type: 'bar',
        data: {
          labels: arms.map(a => armLabel(a.arm)),
          datasets: [{
            label: 'Conversion (%)',
            data: arms.map(a => a.conversion_rate),
            backgroundColor: arms.map((a, n) => (a === results.holdout ? '#6B6B6B' : colour(n)))
          }]
        },
        options: { scales: { y: { beginAtZero: true, title: { display: true, text: '% of assigned' } } } }
      },
      arms.map(a => `${armLabel(a.arm)} ${rate(a.conversion_rate)} of ${count(a.counts.assigned)}`).join('; ') + '.',
      figures
    )
  ]
  if (measured.length) {
    content.push(chart(
      'Uplift over the contacts held out, with its 95% interval',
      {
        type: 'bar',
        data: {
          labels: measured.map(a => armLabel(a.arm)),
          datasets: [
            {
              type: 'bar',
              label: '95% interval (points)',
              data: measured.map(a => [a.uplift.low, a.uplift.high]),
              backgroundColor: 'rgba(0, 114, 178, 0.35)',
              borderColor: '#0072B2',
              borderWidth: 1,
              barPercentage: 0.4
            },
            {
              type: 'line',
              label: 'Uplift (points)',
              data: measured.map(a => a.uplift.points),
              showLine: false,
              pointStyle: 'rectRot',
              pointRadius: 7,
              backgroundColor: '#D55E00',
              borderColor: '#D55E00'
            }
          ]
        },
        options: { scales: { y: { title: { display: true, text: 'percentage points' } } } }
      },
      measured.map(a => `${armLabel(a.arm)}: ${upliftText(a.uplift)}`).join('; ') + '.',
      table(
        'Uplift by arm',
        [
          { label: 'Arm', value: r => armLabel(r.arm) },
          { label: 'Uplift (points)', value: r => points(r.uplift.points) },
          { label: '95% interval', value: r => `${points(r.uplift.low)} to ${points(r.uplift.high)}` },
          { label: 'Significant', value: r => (r.uplift.significant ? 'yes' : 'no') }
        ],
        measured
      )
    ))
  }
  return content
}
