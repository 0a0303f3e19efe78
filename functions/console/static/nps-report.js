// Issue 15: the net promoter score report (GET /admin/metrics/nps): the score per period with its 95 %
// confidence interval, the response rate, and the range's answers by stage, segment and survey.
import { h, table, chart } from './ui.js'
import { colour, count, share } from './report-format.js'

const signedScore = new Intl.NumberFormat(undefined, {
  minimumFractionDigits: 1,
  maximumFractionDigits: 1,
  signDisplay: 'exceptZero'
})

/** An NPS (-100 to 100, one decimal) with its sign: +12.5; a dash without answers. */
export function score (value) {
  return value === null || value === undefined ? '–' : signedScore.format(value)
}

/** An interval: "−19.1 to +65.2" (scores) or "23.7% to 76.3%" (shares); a dash when there is none. */
function between (low, high, format) {
  return low === null || low === undefined ? '–' : `${format(low)} to ${format(high)}`
}

/** "1 promoter", "3 promoters". */
function counted (n, noun) {
  return `${count(n)} ${noun}${n === 1 ? '' : 's'}`
}

const scoreInterval = f => between(f.nps_low, f.nps_high, score)
const rateInterval = f => between(f.response_rate_low, f.response_rate_high, share)

/** The range's headline figures, as a description list. */
function headline (total) {
  const items = [
    ['NPS', score(total.nps)],
    ['95% interval', scoreInterval(total)],
    ['Answers', `${count(total.responses)}: ${counted(total.promoters, 'promoter')}, ` +
      `${counted(total.passives, 'passive')}, ${counted(total.detractors, 'detractor')}`],
    ['Surveys sent', count(total.sent)],
    ['Response rate', total.response_rate === null ? '–' : `${share(total.response_rate)} (${rateInterval(total)})`]
  ]
  return h('dl', { class: 'facts' }, items.map(([term, value]) => [h('dt', {}, term), h('dd', {}, value)]))
}

const FIGURES = [
  { label: 'Answers', value: f => count(f.responses) },
  { label: 'Promoters', value: f => count(f.promoters) },
  { label: 'Passives', value: f => count(f.passives) },
  { label: 'Detractors', value: f => count(f.detractors) },
  { label: 'NPS', value: f => score(f.nps) },
  { label: '95% interval', value: scoreInterval }
]
const RESPONSE = [
  { label: 'Sent', value: f => count(f.sent) },
  { label: 'Response rate', value: f => share(f.response_rate) },
  { label: 'Its 95% interval', value: rateInterval }
]

export function npsReport (data) {
  const total = data.total
  if (!total.responses && !total.sent) {
    return [h('p', { class: 'empty' }, 'No survey answers or sends in this range.')]
  }
  const answered = data.periods.filter(p => p.responses)
  const content = [
    headline(total),
    chart(
      'Net promoter score per period, with its 95% interval',
      {
        type: 'bar',
        data: {
          labels: data.periods.map(p => p.period),
          datasets: [
            {
              // a floating bar from the interval's low end to its high end (none without answers)
              label: '95% interval',
              data: data.periods.map(p => (p.nps_low === null ? null : [p.nps_low, p.nps_high])),
              backgroundColor: 'rgba(86, 180, 233, 0.35)',
              borderColor: colour(4),
              borderWidth: 1,
              order: 2
            },
            {
              type: 'line',
              label: 'NPS',
              data: data.periods.map(p => p.nps),
              borderColor: colour(0),
              backgroundColor: colour(0),
              pointRadius: 5,
              pointStyle: 'rectRot',
              spanGaps: false,
              order: 1
            }
          ]
        },
        options: { scales: { y: { min: -100, max: 100 } } }
      },
      `NPS ${score(total.nps)} over the range (95% interval ${scoreInterval(total)}), from ` +
        `${count(total.responses)} answers` +
        (answered.length ? '; by period: ' + answered.map(p => `${p.period} ${score(p.nps)}`).join(', ') : '') +
        '.',
      table(
        'NPS and response rate per period',
        [{ label: 'Period', value: p => p.period }, ...FIGURES, ...RESPONSE],
        data.periods
      )
    ),
    h('h2', {}, 'By stage'),
    h('p', { class: 'hint' }, 'The lifecycle stage the contacts were in when they answered.'),
    table('NPS by stage, over the whole range', [{ label: 'Stage', value: g => g.key }, ...FIGURES],
      data.by_stage, 'No answers from contacts in a stage.'),
    h('h2', {}, 'By segment'),
    h('p', { class: 'hint' }, 'The segments the contacts were members of when they answered (a contact counts in each).'),
    table('NPS by segment, over the whole range', [{ label: 'Segment', value: g => g.key }, ...FIGURES],
      data.by_segment, 'No answers from segment members.'),
    h('h2', {}, 'By survey'),
    table('NPS and response rate by survey, over the whole range',
      [{ label: 'Survey', value: g => g.key }, ...FIGURES, ...RESPONSE], data.by_survey)
  ]
  return content
}
