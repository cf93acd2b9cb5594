exports.handler = async () => ({
  statusCode: 200,
  body: JSON.stringify({
    message: `${process.env.GREETING || "Hello"} from node`,
    stage: process.env.STAGE,
  }),
});
