// How the reports write their figures (in the reader's own locale) and colour their series.

const whole = new Intl.NumberFormat(undefined, { maximumFractionDigits: 0 })
const amount = new Intl.NumberFormat(undefined, { minimumFractionDigits: 2, maximumFractionDigits: 2 })
const percent = new Intl.NumberFormat(undefined, { style: 'percent', maximumFractionDigits: 1 })
const signed = new Intl.NumberFormat(undefined, {
  minimumFractionDigits: 2,
  maximumFractionDigits: 2,
  signDisplay: 'exceptZero'
})

/** A count: 1,234. */
export function count (n) {
  return whole.format(n || 0)
}

/** Money, as the purchases carried it (no currency is recorded): 1,234.50. */
export function money (n) {
  return amount.format(n || 0)
}

/** A share given as a fraction (0.3333 → 33.3%); a dash when there is none (nobody to count). */
export function share (fraction) {
  return fraction === null || fraction === undefined ? '–' : percent.format(fraction)
}

/** A rate the API gives in percent already (12.5 → 12.5%). */
export function rate (percentValue) {
  return percentValue === null || percentValue === undefined ? '–' : share(percentValue / 100)
}

/** Percentage points with their sign: +1.20. */
export function points (value) {
  return signed.format(value)
}

/** A value or a dash for "none". */
export function orDash (value) {
  return value === null || value === undefined ? '–' : String(value)
}

/** Colour-blind-safe series colours (Okabe and Ito), in the order series are drawn. */
export const PALETTE = ['#0072B2', '#E69F00', '#009E73', '#CC79A7', '#56B4E9', '#D55E00', '#6B6B6B', '#F0E442']

export function colour (index) {
  return PALETTE[index % PALETTE.length]
}
