import { z } from 'zod';

/** What a Dubbo 3 application-level registration becomes (`dubbo.applicationLevel`). */
export const applicationLevelModes = ['merge', 'separate', 'ignore'] as const;
export type ApplicationLevelMode = (typeof applicationLevelModes)[number];

/**
 * The `dubbo` block of the settings of a registry that holds Dubbo registrations (ZooKeeper,
 * Nacos): one definition, with the registry's own words for what an application-level
 * registration looks like there.
 */
export function dubboSettingsSchema(help: { readonly registry: string; readonly applicationLevel: string }) {
  return z
    .strictObject({
      applicationLevel: z.enum(applicationLevelModes).default('merge').describe(help.applicationLevel),
    })
    .default({ applicationLevel: 'merge' })
    .describe(`How Dubbo registrations in this ${help.registry} map to mesh services.`);
}
