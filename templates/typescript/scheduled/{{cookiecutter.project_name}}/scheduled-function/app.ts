import type { ScheduledEvent } from 'aws-lambda';

/**
 * Runs on the schedule in template.yaml; `event` is EventBridge's Scheduled Event.
 */
export const lambdaHandler = async (event: ScheduledEvent): Promise<{ ok: boolean; time: string }> => {
  console.log(JSON.stringify({ scheduledAt: event.time, rule: event.resources }));
  return { ok: true, time: event.time };
};
