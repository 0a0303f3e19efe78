// The engagement gauge: the index (0 to 4) on a half dial of two halves (before and after purchase) and
// four quarters, a needle at the contact's index and an arrow for the direction. Drawn as SVG (no
// inline styles: the page's policy allows only its own stylesheet), with a text alternative.
import { h } from './ui.js'

const SVG = 'http://www.w3.org/2000/svg'

/** The four quarters, in gauge order (shared/engagement/index.py), with what each means. */
export const QUARTERS = [
  { id: 'nurturing', label: 'Nurturing', half: 'before purchase', meaning: 'engagement below the sales threshold' },
  { id: 'sales', label: 'Sales', half: 'before purchase', meaning: 'sales-ready: engagement at or above the sales threshold' },
  { id: 'retention', label: 'Retention', half: 'after purchase', meaning: 'a customer whose engagement is healthy' },
  { id: 'exit', label: 'Exit', half: 'after purchase', meaning: 'a customer whose engagement fell below the exit threshold' }
]

const ARROWS = { rising: '↑', falling: '↓', steady: '→' }

function svg (tag, attributes = {}, ...children) {
  const element = document.createElementNS(SVG, tag)
  for (const [name, value] of Object.entries(attributes)) {
    if (value !== undefined && value !== null) element.setAttribute(name, String(value))
  }
  for (const child of children.flat()) {
    if (child !== null && child !== undefined) element.append(child)
  }
  return element
}

// the dial: centre (100, 100), radius 80; index 0 at the left end, 4 at the right end
const CX = 100
const CY = 100

function point (index, radius) {
  const angle = Math.PI * (1 - index / 4)
  return [CX + radius * Math.cos(angle), CY - radius * Math.sin(angle)]
}

function arc (from, to, radius) {
  const [x1, y1] = point(from, radius)
  const [x2, y2] = point(to, radius)
  return `M ${x1.toFixed(2)} ${y1.toFixed(2)} A ${radius} ${radius} 0 0 1 ${x2.toFixed(2)} ${y2.toFixed(2)}`
}

/** The quarter the index falls in (its floor), clamped to the four. */
export function quarterOf (index) {
  return QUARTERS[Math.min(3, Math.max(0, Math.floor(Number(index) || 0)))]
}

/** The gauge's text alternative: "Index 1.2 of 4: quarter 2 of 4, sales (before purchase: ...), rising". */
export function describe (engagement) {
  const index = Number(engagement.index) || 0
  const quarter = QUARTERS.find(q => q.id === engagement.quarter) || quarterOf(index)
  const number = QUARTERS.indexOf(quarter) + 1
  const direction = engagement.direction || 'steady'
  return `Index ${index.toFixed(1)} of 4: quarter ${number} of 4, ${quarter.id} (${quarter.half}: ` +
    `${quarter.meaning}); engagement ${direction}`
}

/** The gauge for a card's `engagement` ({ quarter, index, direction, current }). */
export function gauge (engagement) {
  const index = Math.min(4, Math.max(0, Number(engagement.index) || 0))
  const quarter = QUARTERS.find(q => q.id === engagement.quarter) || quarterOf(index)
  const direction = engagement.direction || 'steady'
  const text = describe(engagement)
  const titleId = `gauge-title-${Math.random().toString(36).slice(2, 8)}`
  const [nx, ny] = point(index, 66)
  const tilt = { rising: -90, falling: 90, steady: 0 }[direction] ?? 0
  const drawing = svg(
    'svg',
    { viewBox: '-22 -6 244 134', role: 'img', 'aria-labelledby': titleId, class: 'gauge-dial', focusable: 'false' },
    svg('title', { id: titleId }, text),
    QUARTERS.map((q, i) =>
      svg('path', {
        d: arc(i + 0.02, i + 0.98, 80),
        class: `gauge-quarter gauge-${q.id}${q === quarter ? ' gauge-here' : ''}`,
        fill: 'none',
        'stroke-width': q === quarter ? 20 : 16
      })
    ),
    // the halves: a line at the top where purchase divides them
    svg('line', { x1: CX, y1: 8, x2: CX, y2: 32, class: 'gauge-divide', 'stroke-width': 2 }),
    QUARTERS.map((q, i) => {
      const [x, y] = point(i + 0.5, 100)
      return svg('text', { x: x.toFixed(1), y: Math.min(y, 118).toFixed(1), 'text-anchor': 'middle', class: 'gauge-label' }, q.label)
    }),
    svg('line', { x1: CX, y1: CY, x2: nx.toFixed(2), y2: ny.toFixed(2), class: 'gauge-needle', 'stroke-width': 4, 'stroke-linecap': 'round' }),
    svg('circle', { cx: CX, cy: CY, r: 6, class: 'gauge-hub' }),
    // the direction: an arrow up (rising), down (falling) or across (steady), beside the hub
    svg(
      'g',
      { transform: `translate(${CX + 34} ${CY - 10}) rotate(${tilt})`, class: `gauge-arrow gauge-${direction}` },
      svg('line', { x1: -10, y1: 0, x2: 8, y2: 0, 'stroke-width': 3 }),
      svg('path', { d: 'M 12 0 L 4 -6 L 4 6 Z' })
    ),
    svg('text', { x: CX - 40, y: CY - 4, 'text-anchor': 'middle', class: 'gauge-value' }, index.toFixed(1))
  )
  return h(
    'figure',
    {
      class: 'gauge',
      'data-quarter': quarter.id,
      'data-index': String(engagement.index),
      'data-direction': direction
    },
    drawing,
    h(
      'figcaption',
      {},
      h('strong', {}, `${quarter.label} ${ARROWS[direction] || ''}`),
      ' ',
      h('span', { class: 'gauge-text' }, text),
      h(
        'span',
        { class: 'gauge-halves' },
        h('span', {}, 'Left half: before purchase (nurturing, sales)'),
        h('span', {}, 'right half: after purchase (retention, exit)')
      )
    )
  )
}
