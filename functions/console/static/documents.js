// Rules, funnel, automations, templates, segments and campaigns: list, view, edit and pause. The one
// module app.js imports for them: each document has its own module, gathered here.
import * as rules from './rules.js'
import * as funnel from './funnel.js'
import * as automations from './automations.js'
import * as templates from './templates.js'
import * as segments from './segments.js'
import * as campaigns from './campaigns.js'
import * as catalog from './catalog.js' // issue 15: the product catalog

const SCREENS = [rules, funnel, automations, templates, segments, campaigns, catalog]

export const nav = SCREENS.flatMap(screen => screen.nav)
export const routes = SCREENS.flatMap(screen => screen.routes)
