// Reports: the lifecycle metrics as charts, and campaign results with uplift.
import { h } from './ui.js'

export const nav = [{ href: '#/reports', label: 'Reports' }]
export const routes = [
  { pattern: /^\/reports$/, title: 'Reports', render: async main => main.replaceChildren(h('h1', {}, 'Reports')) }
]
