// The sales view: a salesperson's leads, hottest first, to accept.
import { h } from './ui.js'

export const nav = [{ href: '#/sales', label: 'Sales' }]
export const routes = [
  { pattern: /^\/sales$/, title: 'Sales', render: async main => main.replaceChildren(h('h1', {}, 'Sales')) }
]
