// Rules, funnel, automations, templates, segments and campaigns: list, view, edit and pause.
import { h } from './ui.js'

export const nav = [{ href: '#/rules', label: 'Rules' }]
export const routes = [
  { pattern: /^\/rules$/, title: 'Rules', render: async main => main.replaceChildren(h('h1', {}, 'Rules')) }
]
